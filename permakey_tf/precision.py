"""Which Keras precision policy is fastest on this machine: measured, not guessed from CPU flags.

CPUs that report bfloat16 instructions differ widely in what they do with them (docs/PERFORMANCE.md
has the measurements): bfloat16 matrix products can be several times faster than float32 ones or
slower. ``"auto"`` times TensorFlow's own matrix product in both dtypes when a run starts and
picks the faster; train.py records the policy chosen in the run's config.json.
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

POLICY_DTYPES = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}


def matmul_flops_per_second(dtype: str = "float32", size: int = 2048, repeats: int = 5,
                            chain: int = 4) -> float:
    """Best-of-``repeats`` FLOP/s of ``chain`` square ``size`` x ``size`` matrix products in one
    tf.function, in ``dtype``: what TensorFlow's own matrix product reaches here, now."""
    dt = tf.as_dtype(dtype)
    rng = np.random.default_rng(0)
    a = tf.constant(rng.standard_normal((size, size)).astype(np.float32) / np.sqrt(size), dtype=dt)
    b = tf.constant(rng.standard_normal((size, size)).astype(np.float32) / np.sqrt(size), dtype=dt)

    @tf.function
    def products(a, b):
        total = tf.zeros([], tf.float32)
        x = a
        for _ in range(chain):
            x = tf.matmul(x, b)
            total += tf.cast(x[0, 0], tf.float32)
        return total

    products(a, b).numpy()  # trace and warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        products(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 * chain / best


# A mixed policy must beat float32 by this factor to be chosen: its casts and float32 statistics
# cost something the matrix product does not show, and a busy machine makes timings noisy.
MIN_SPEEDUP = 1.25


def fastest_policy(candidates=("float32", "mixed_bfloat16"), size: int = 1024) -> tuple[str, dict]:
    """The candidate policy whose matrix product is fastest here; any candidate after the first
    must be at least ``MIN_SPEEDUP`` times faster than the first to be preferred to it.

    Returns:
      ``(policy name, {policy: GFLOP/s})``. On a GPU, "mixed_float16" is not timed: pass it in
      ``candidates`` to include it.
    """
    rates = {name: matmul_flops_per_second(POLICY_DTYPES[name], size=size, repeats=3, chain=2) / 1e9
             for name in candidates}
    first = candidates[0]
    best = max(candidates, key=lambda name: rates[name] / (1.0 if name == first else MIN_SPEEDUP))
    return best, rates
