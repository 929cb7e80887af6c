"""Shared pieces of the benchmark scripts: device description, peak memory, the matrix-product
throughput probe (the "ceiling"), a FLOP counter over a traced TensorFlow graph, and the one-line
result format.

FLOP counting (``graph_flops``): the model's work is counted from the ops of the traced graph of
the step being timed (``tf.function(...).get_concrete_function(...)``), i.e. from the layers as
they are actually computed, with static shapes:

  * ``MatMul``/``BatchMatMul*``: 2 m n k; ``Conv2D``: 2 B Ho Wo Co kh kw Ci; the two convolution
    gradients (``Conv2DBackpropInput``/``Conv2DBackpropFilter``) cost the same as their forward
    convolution; ``Einsum``: 2 x the product of every index size in the equation.
  * Only ops that can influence the function's outputs or its stateful updates are counted
    (dead-code elimination from ``outputs`` and ``control_outputs``): e.g. the input gradient of a
    layer whose input is stop-gradient is traced by the tape but pruned by Grappler before running,
    and is not counted either.
  * Element-wise ops (BatchNorm, ReLU, Adam updates, losses) are not counted: they are memory
    bound, a few percent of the FLOPs at most, and not what the matmul ceiling measures.
  * ``zero_tap_flops``: PermaKey's LSPN stores its first Dense over the 8 neighbour cells as a
    3x3 kernel with the centre tap masked to zero (permakey_tf/models/networks.py). Its forward pass and
    weight gradient run on the ring of neighbours (no centre work), but a 3x3 convolution with
    that kernel (an input gradient that is not pruned, or an older form of the layer) multiplies
    zeros in one ninth of its work. ``model_flops`` = ``executed_flops - zero_tap_flops`` is the
    mathematically needed work (the paper's count), which is what the utilisation figure uses
    (work that multiplies zeros is not useful work).

``tf.compat.v1.profiler`` was checked as an alternative (``v1_profiler_flops``): it walks every op
of the graph including the dead ones, so on a training step it also counts the pruned input
gradients, and it counts element-wise ops; its MatMul/Conv2D numbers agree with ours on single
layers (tests/test_bench.py).
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import resource
import subprocess
import sys
import time
from collections import defaultdict
from typing import Callable, Iterable, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from permakey_tf.machine import cpu_flags, cpu_model  # noqa: E402
from permakey_tf.precision import matmul_flops_per_second  # noqa: E402

GIB = 1024**3

# --------------------------------------------------------------------------------- the device


def gpu_names() -> list[str]:
    names = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        names.append(details.get("device_name", device.name))
    return names


# The most capable matrix instruction set first: it decides the bfloat16 ceiling (AMX ~1.5
# TFLOP/s on 2 cores, AVX-512 BF16 alone ~0.1-0.9 depending on the CPU; docs/PERFORMANCE.md).
ISA_NAMES = ("amx_bf16", "avx512_bf16", "avx512f")


def describe_device() -> str:
    """One short line: GPU name(s) if any, else the CPU model, cores and the relevant ISA; TF."""
    gpus = gpu_names()
    if gpus:
        device = "GPU " + "+".join(gpus)
    else:
        flags = cpu_flags()
        isa = next((name for name in ISA_NAMES if name in flags), "")
        device = f"CPU {cpu_model()} x{os.cpu_count()} cores" + (f" {isa}" if isa else "")
    return f"{device}, TF {tf.__version__}"


def load_average() -> str:
    """The 1-minute load average (other processes on a shared machine make numbers noisy)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "n/a"


# --------------------------------------------------------------------------------- memory


def peak_host_memory_gib() -> float:
    """Peak resident memory of this process (ru_maxrss, KiB on Linux)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == "darwin":  # bytes there
        kib /= 1024
    return kib * 1024 / GIB


def peak_device_memory_gib() -> Optional[float]:
    """Peak memory TensorFlow allocated on GPU:0, or None without a GPU."""
    if not tf.config.list_physical_devices("GPU"):
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / GIB


def memory_text() -> str:
    text = f"host {peak_host_memory_gib():.2f} GiB"
    device = peak_device_memory_gib()
    if device is not None:
        text += f", GPU {device:.2f} GiB"
    return text


# --------------------------------------------------------------------------------- ceiling


def matmul_ceiling(
    dtype: str = "float32", size: Optional[int] = None, repeats: int = 5, chain: int = 4
) -> float:
    """Best-of-``repeats`` FLOP/s of ``chain`` square ``size`` x ``size`` matmuls in a tf.function.

    This is the "hardware ceiling" the utilisation figures divide by: what TensorFlow's own
    matrix product reaches on this device, in this process, in this precision. ``size`` None:
    2048 on CPU (17 GFLOP per product), 8192 on a GPU (large enough to fill its tensor cores).
    """
    if size is None:
        size = 8192 if tf.config.list_physical_devices("GPU") else 2048
    return matmul_flops_per_second(dtype, size=size, repeats=repeats, chain=chain)


def ceiling_dtype(precision: str) -> str:
    """The matmul dtype a Keras precision policy computes in."""
    return {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}[precision]


# --------------------------------------------------------------------------------- FLOPs

COUNTED_OPS = (
    "MatMul",
    "BatchMatMul",
    "BatchMatMulV2",
    "BatchMatMulV3",
    "Conv2D",
    "Conv2DBackpropInput",
    "Conv2DBackpropFilter",
    "Einsum",
)


@dataclasses.dataclass
class FlopCount:
    """FLOPs of one call of a traced function, split by op type and by model module."""

    executed_flops: float = 0.0
    zero_tap_flops: float = 0.0
    by_op_type: dict = dataclasses.field(default_factory=lambda: defaultdict(float))
    by_module: dict = dataclasses.field(default_factory=lambda: defaultdict(float))
    uncounted_ops: dict = dataclasses.field(default_factory=lambda: defaultdict(int))

    @property
    def model_flops(self) -> float:
        return self.executed_flops - self.zero_tap_flops


def _static(shape) -> list[int]:
    dims = shape.as_list() if hasattr(shape, "as_list") else list(shape)
    if dims is None or any(d is None for d in dims):
        raise ValueError(
            f"FLOP counting needs static shapes, got {dims}: trace the function with a fully "
            "defined input signature (fixed batch size)"
        )
    return dims


def _const_value(tensor) -> Optional[np.ndarray]:
    try:
        return tf.get_static_value(tensor)
    except Exception:  # noqa: BLE001 - any failure means "not a constant"
        return None


def _conv_flops(out_shape, filter_shape) -> float:
    b, ho, wo, co = out_shape
    kh, kw, ci, _ = filter_shape
    return 2.0 * b * ho * wo * co * kh * kw * ci


def op_flops(op) -> Optional[float]:
    """FLOPs of one graph op (None for op types that are not counted)."""
    kind = op.type
    if kind == "MatMul":
        a = _static(op.inputs[0].shape)
        k = a[0] if op.get_attr("transpose_a") else a[1]
        m, n = _static(op.outputs[0].shape)
        return 2.0 * m * n * k
    if kind.startswith("BatchMatMul"):
        a = _static(op.inputs[0].shape)
        adjoint = op.get_attr("adj_x")
        k = a[-2] if adjoint else a[-1]
        out = _static(op.outputs[0].shape)
        return 2.0 * float(np.prod(out)) * k
    if kind in ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"):
        if op.get_attr("data_format") not in (b"NHWC", "NHWC"):
            raise ValueError(f"{op.name}: only NHWC convolutions are counted")
        if kind == "Conv2D":
            return _conv_flops(_static(op.outputs[0].shape), _static(op.inputs[1].shape))
        out_backprop = _static(op.inputs[2].shape)
        if kind == "Conv2DBackpropInput":
            filter_shape = _static(op.inputs[1].shape)
        else:
            filter_shape = _static(op.outputs[0].shape)
        return _conv_flops(out_backprop, filter_shape)
    if kind == "Einsum":
        equation = op.get_attr("equation").decode()
        inputs, _ = equation.replace(" ", "").split("->")
        sizes = {}
        for spec, tensor in zip(inputs.split(","), op.inputs):
            dims = _static(tensor.shape)
            if "." in spec:
                raise ValueError(f"{op.name}: Einsum with ellipsis is not counted ({equation})")
            sizes.update(zip(spec, dims))
        return 2.0 * float(np.prod(list(sizes.values())))
    return None


def live_ops(graph, outputs: Iterable, control_outputs: Iterable = ()) -> list:
    """Ops that can affect ``outputs`` or the stateful ``control_outputs`` (dead-code elimination)."""
    seen = set()
    stack = [t.op for t in outputs if t is not None] + list(control_outputs)
    live = []
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        live.append(op)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return live


def _module_of(op_name: str, modules: Iterable[str]) -> str:
    parts = [re.sub(r"_\d+$", "", p) for p in op_name.split("/")]
    for part in parts:
        if part in modules:
            return part
    return "other"


def _is_zero_tap_conv(op) -> bool:
    """A 3x3 convolution (or one of its gradients) with an LSPN's centre-masked first-layer kernel."""
    if "lspn" not in op.name or op.type not in ("Conv2D", "Conv2DBackpropFilter", "Conv2DBackpropInput"):
        return False
    filter_shape = _static(op.outputs[0].shape if op.type == "Conv2DBackpropFilter" else op.inputs[1].shape)
    return filter_shape[:2] == [3, 3]


def graph_flops(concrete_function, modules: Iterable[str] = ()) -> FlopCount:
    """FLOPs of one call of ``concrete_function`` (see the module docstring for the rules).

    Args:
      concrete_function: ``tf.function(f).get_concrete_function(<fully defined specs>)``.
      modules: names of the model's sub-layers (e.g. "encoder", "lspn_layer0") to split the
        count by; ops outside them go to "other".
    """
    graph = concrete_function.graph
    ops = live_ops(graph, concrete_function.outputs, graph.control_outputs)
    count = FlopCount()
    modules = tuple(modules)
    for op in ops:
        flops = op_flops(op)
        if flops is None:
            if op.type in ("StatefulPartitionedCall", "PartitionedCall", "While", "If", "StatelessIf"):
                count.uncounted_ops[op.type] += 1
            continue
        count.executed_flops += flops
        count.by_op_type[op.type] += flops
        count.by_module[_module_of(op.name, modules)] += flops
        if _is_zero_tap_conv(op):
            count.zero_tap_flops += flops / 9.0
    return count


def v1_profiler_flops(concrete_function) -> float:
    """tf.compat.v1.profiler's float_operation count of the whole graph (cross-check only)."""
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    result = tf.compat.v1.profiler.profile(concrete_function.graph, options=options)
    return float(result.total_float_ops)


def model_modules(model) -> list[str]:
    """Names of a model's direct sub-layers, for splitting FLOPs by module."""
    return [layer.name for layer in model._flatten_layers(include_self=False, recursive=False)]


# --------------------------------------------------------------------------------- op profile


def trace_op_times(trace_dir: str) -> dict[str, float]:
    """Seconds spent per TensorFlow op type in a ``tf.profiler`` trace written to ``trace_dir``.

    Reads the trace's XSpace protobuf (``<dir>/plugins/profile/<run>/*.xplane.pb``, the newest run)
    and sums the durations of the op events of TensorFlow's compute threads (``tf_Compute/*``),
    keyed by op type with oneDNN's prefixes removed (``_MklNativeConv2D`` -> ``Conv2D``). Ops that
    TensorFlow runs at the same time on its inter-op threads are each counted in full, so the sum
    can exceed the wall time; compare shares, not totals.
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    runs = sorted(glob.glob(os.path.join(trace_dir, "plugins", "profile", "*")))
    files = glob.glob(os.path.join(runs[-1], "*.xplane.pb")) if runs else []
    if not files:
        raise FileNotFoundError(f"no tf.profiler trace (*.xplane.pb) under {trace_dir}")
    times: dict[str, float] = defaultdict(float)
    for path in files:
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
        for plane in space.planes:
            for line in plane.lines:
                if not line.name.startswith("tf_Compute"):
                    continue
                for event in line.events:
                    name = plane.event_metadata[event.metadata_id].name
                    if ":" not in name.replace("::", ""):  # executor bookkeeping, not an op
                        continue
                    op_type = re.sub(r"^_Mkl(Native)?", "", name.rsplit(":", 1)[1])
                    times[op_type] += event.duration_ps * 1e-12
    return dict(times)


# --------------------------------------------------------------------------------- timing


def time_steps(step: Callable[[], object], warmup: int, steps: int) -> tuple[list[float], float]:
    """Runs ``step`` ``warmup`` times untimed (tracing, autotuning), then ``steps`` times timed.

    ``step`` must block until its work is done (e.g. return numpy). Returns (per-step seconds,
    seconds of the first warm-up call, i.e. tracing + compilation + first step).
    """
    first = 0.0
    for i in range(warmup):
        start = time.perf_counter()
        step()
        if i == 0:
            first = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times, first


def set_precision(precision: str) -> None:
    import keras

    if precision not in ("float32", "mixed_bfloat16", "mixed_float16"):
        raise ValueError(f"precision must be float32, mixed_bfloat16 or mixed_float16, got {precision!r}")
    keras.mixed_precision.set_global_policy(precision)


def random_frames(batch_size: int, image_size: int = 84, seed: int = 0) -> tf.Tensor:
    """uint8 ``[B, S, S, 3]`` frames with some structure (smooth blobs + noise), seeded."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:image_size, 0:image_size]
    frames = np.zeros((batch_size, image_size, image_size, 3), np.float32)
    for b in range(batch_size):
        for _ in range(6):
            cy, cx = rng.uniform(0, image_size, 2)
            radius = rng.uniform(2, 8)
            colour = rng.uniform(0, 255, 3)
            blob = ((yy - cy) ** 2 + (xx - cx) ** 2) < radius**2
            frames[b][blob] = colour
    frames += rng.uniform(0, 20, frames.shape)
    return tf.constant(np.clip(frames, 0, 255).astype(np.uint8))


def format_line(fields: dict) -> str:
    """One result line: ``key=value`` pairs separated by two spaces (grep- and eye-friendly)."""
    return "  ".join(f"{k}={v}" for k, v in fields.items())


def run_isolated(argv: list[str]) -> int:
    """Runs ``python argv...`` in a fresh process (own peak memory, own Keras dtype policy),
    streaming its output; returns its exit code."""
    return subprocess.call([sys.executable] + argv)
