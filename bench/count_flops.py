"""FLOPs per example of PermaKey and Transporter (paper configurations), counted from the traced
graphs of the forward pass and of one training step (bench/common.py), split by module and op.
Nothing is executed, only traced. ``--v1-profiler`` also prints tf.compat.v1.profiler's count of
the same graphs for comparison.

Examples:
  python bench/count_flops.py
  python bench/count_flops.py --model permakey --precision mixed_bfloat16 --v1-profiler
"""

from __future__ import annotations

import argparse
import sys


from bench import common  # noqa: E402
from bench.train_throughput import build_model  # noqa: E402
from permakey_tf.models.registry import MODELS, get_model_spec  # noqa: E402


def report(name: str, count: common.FlopCount, per: int, v1: float | None) -> None:
    g = lambda v: f"{v / per / 1e9:.3f}"  # noqa: E731
    print(f"  {name}: model {g(count.model_flops)} GFLOP/ex (executed {g(count.executed_flops)}, "
          f"of which multiplying the masked LSPN centre tap {g(count.zero_tap_flops)})"
          + (f"; tf.compat.v1.profiler (whole graph, incl. dead ops and element-wise) {g(v1)}" if v1 else ""))
    print("    by module:", {k: g(v) for k, v in sorted(count.by_module.items(), key=lambda kv: -kv[1])})
    print("    by op:", {k: g(v) for k, v in sorted(count.by_op_type.items(), key=lambda kv: -kv[1])})
    if count.uncounted_ops:
        print("    NOT descended into:", dict(count.uncounted_ops))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=MODELS + ("all",), default="all")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--batch-size", type=int, default=None, help="default 32 (PermaKey) / 64 (Transporter)")
    parser.add_argument("--v1-profiler", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    import tensorflow as tf

    common.set_precision(args.precision)
    models = MODELS if args.model == "all" else (args.model,)
    for name in models:
        spec = get_model_spec(name)
        batch = args.batch_size or (2 if args.smoke else spec.paper_batch_size)
        model, data = build_model(name, args.smoke, batch, jit=False)
        modules = common.model_modules(model)
        specs = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), data)
        train_cf = tf.function(model.train_step).get_concrete_function(specs)
        frame_spec = tf.TensorSpec((batch, 84, 84, 3), tf.uint8)
        fwd_cf = tf.function(lambda f: model(f, training=False)).get_concrete_function(frame_spec)
        print(f"{name} (batch {batch}, {args.precision}; per example = per {spec.examples[:-1]}):")
        fwd = common.graph_flops(fwd_cf, modules)
        report("forward (call, training=False)", fwd, batch, common.v1_profiler_flops(fwd_cf) if args.v1_profiler else None)
        if spec.has_error_maps:  # PermaKey: its decoder is training-only
            kp_cf = tf.function(lambda f: model.predict_keypoints(f)).get_concrete_function(frame_spec)
            report("forward without decoder (predict_keypoints)", common.graph_flops(kp_cf, modules), batch, None)
        train = common.graph_flops(train_cf, modules)
        report("training step", train, batch, common.v1_profiler_flops(train_cf) if args.v1_profiler else None)
        print(f"  training / forward = {train.model_flops / fwd.model_flops:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
