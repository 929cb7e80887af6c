"""Training throughput of PermaKey and Transporter: one printed line per configuration
(model x precision x jit x batch size).

Each configuration runs in its own process (its own peak memory and Keras dtype policy). A
configuration builds the model with the paper's defaults, compiles it, and times
``tf.function(model.train_step, jit_compile=jit)`` on one fixed, pre-built batch (the input
pipeline is measured separately by bench/input_pipeline.py); ``--warmup`` steps (tracing, XLA
compilation, oneDNN primitive creation) are excluded. In the same process it measures the
matrix-product ceiling of the policy's compute dtype and counts the step's FLOPs from its traced
graph (bench/common.py), and prints:

  frames/s (PermaKey; pairs/s for Transporter, each pair = 2 frames through the encoders),
  median step time, first step (trace + compile + run), peak host memory (ru_maxrss; GPU peak too
  when there is one), GFLOP per example (forward, and training step), the ceiling, and
  util = examples/s x training FLOP per example / ceiling.

Examples:
  python bench/train_throughput.py                          # PermaKey + Transporter, all configs
  python bench/train_throughput.py --model permakey --precision mixed_bfloat16 --jit off
  python bench/train_throughput.py --model permakey --preset quick  # the quick preset's model and batch
  python bench/train_throughput.py --smoke                  # tiny models, seconds
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys


from bench import common  # noqa: E402
from permakey_tf.models.registry import MODELS, get_model_spec  # noqa: E402

PRECISIONS = ("float32", "mixed_bfloat16")
# Tiny networks for --smoke (seconds), per model.
SMOKE_CHANGES = {
    "permakey": dict(encoder_filters=(4, 8, 8, 8), lsp_hidden_widths=(16, 8), num_keypoints=2),
    "transporter": dict(encoder_filters=(4, 4, 8, 8), decoder_filters=(8, 8, 8, 8), num_keypoints=2),
}


def model_config(model: str, smoke: bool, preset: str = "paper"):
    """The config of ``model`` under a train.py preset (default: the paper's), or its tiny
    --smoke version."""
    if smoke:
        return get_model_spec(model).config_class(**SMOKE_CHANGES[model])
    return preset_run_config(model, preset).model_config


def preset_run_config(model: str, preset: str):
    """train.py's resolved RunConfig for ``model`` under ``preset`` (model config, batch size)."""
    from permakey_tf.training.run_flags import resolve_config

    return resolve_config({"model": model, "preset": preset})


def build_model(model_name: str, smoke: bool, batch_size: int, jit: bool, preset: str = "paper"):
    """A compiled model whose optimizers exist, and a function making its training batch."""
    import keras

    keras.utils.set_random_seed(0)
    frames = common.random_frames(batch_size, seed=0)
    spec = get_model_spec(model_name)
    model = spec.model_class(model_config(model_name, smoke, preset))
    if spec.examples == "frames":
        model.compile(jit_compile=jit)
        return model, frames
    model(frames[:1])  # builds the layers
    model.compile(jit_compile=jit)
    model.optimizer.build(model.trainable_variables)
    targets = common.random_frames(batch_size, seed=1)
    return model, (frames, targets)


def forward_function(model):
    """The inference forward pass as a tf.function over uint8 frames (for counting FLOPs)."""
    import tensorflow as tf

    return tf.function(lambda frames: model(frames, training=False))


def run_one(args) -> None:
    import numpy as np
    import tensorflow as tf

    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    common.set_precision(args.precision)
    jit = args.jit == "on"
    model, batch = build_model(args.model, args.smoke, args.batch_size, jit, args.preset)
    step_fn = tf.function(model.train_step, jit_compile=jit, reduce_retracing=True)
    specs = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), batch)
    modules = common.model_modules(model)
    train_count = common.graph_flops(step_fn.get_concrete_function(specs), modules)
    frame_spec = tf.TensorSpec((args.batch_size, 84, 84, 3), tf.uint8)
    forward_count = common.graph_flops(forward_function(model).get_concrete_function(frame_spec), modules)

    def step():
        return float(np.asarray(step_fn(batch)["loss"]))

    times, first = common.time_steps(step, args.warmup, args.steps)
    ceiling = common.matmul_ceiling(
        common.ceiling_dtype(args.precision), size=256 if args.smoke else None, repeats=3 if args.smoke else 5
    )
    median = statistics.median(times)
    rate = args.batch_size / median
    train_per_example = train_count.model_flops / args.batch_size
    forward_per_example = forward_count.model_flops / args.batch_size
    unit = f"{get_model_spec(args.model).examples}/s"
    print(
        common.format_line(
            {
                "bench": "train",
                "model": args.model,
                "precision": args.precision,
                "jit": args.jit,
                **({"preset": args.preset} if args.preset != "paper" else {}),
                "batch": args.batch_size,
                **({"inter_op": args.inter_op_threads} if args.inter_op_threads else {}),
                unit: f"{rate:.2f}",
                "step_s": f"{median:.3f}",
                "step_s_min": f"{min(times):.3f}",
                "first_step_s": f"{first:.1f}",
                "fwd_GFLOP/ex": f"{forward_per_example / 1e9:.2f}",
                "train_GFLOP/ex": f"{train_per_example / 1e9:.2f}",
                "ceiling_GFLOP/s": f"{ceiling / 1e9:.0f}",
                "util": f"{100 * rate * train_per_example / ceiling:.0f}%",
                "peak_mem": f"'{common.memory_text()}'",
                "load": common.load_average(),
                "device": f"'{common.describe_device()}'",
            }
        ),
        flush=True,
    )
    if args.verbose:
        print("  train FLOP by module (GFLOP/ex):", {k: round(v / args.batch_size / 1e9, 3) for k, v in train_count.by_module.items()})
        print("  train FLOP by op (GFLOP/ex):", {k: round(v / args.batch_size / 1e9, 3) for k, v in train_count.by_op_type.items()})
        print("  forward FLOP by module (GFLOP/ex):", {k: round(v / args.batch_size / 1e9, 3) for k, v in forward_count.by_module.items()})
        print(f"  zero-tap (masked centre) GFLOP/ex: forward {forward_count.zero_tap_flops / args.batch_size / 1e9:.3f}, train {train_count.zero_tap_flops / args.batch_size / 1e9:.3f}")
        print("  step times (s):", [round(t, 3) for t in times])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=MODELS + ("all",), default="all")
    parser.add_argument("--precision", choices=PRECISIONS + ("mixed_float16", "all"), default="all")
    parser.add_argument("--jit", choices=("off", "on", "all"), default="all")
    parser.add_argument("--batch-size", type=int, nargs="+", default=None,
                        help="batch sizes (default: the paper's, 32 for PermaKey and 64 for Transporter)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (>= 1)")
    parser.add_argument("--smoke", action="store_true", help="tiny models, batch 2, 1 step: checks the script runs")
    parser.add_argument("--preset", default="paper", choices=("paper", "quick"),
                        help="the model config and default batch size of a train.py preset (default: paper)")
    parser.add_argument("--inter-op-threads", type=int, default=0,
                        help="tf.config.threading inter-op threads (0 = TensorFlow's default)")
    parser.add_argument("--verbose", action="store_true", help="also print the FLOP split and step times")
    parser.add_argument("--in-process", action="store_true",
                        help="run a single configuration in this process (used by the per-config subprocesses)")
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be >= 1")
    if args.smoke:
        args.steps, args.warmup = 1, 1
        args.batch_size = args.batch_size or [2]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    models = MODELS if args.model == "all" else (args.model,)
    precisions = PRECISIONS if args.precision == "all" else (args.precision,)
    jits = ("off", "on") if args.jit == "all" else (args.jit,)
    configs = [
        (m, p, j, b)
        for m in models
        for b in (args.batch_size or [get_model_spec(m).paper_batch_size if args.preset == "paper"
                                      else preset_run_config(m, args.preset).train.batch_size])
        for p in precisions
        for j in jits
    ]
    if args.in_process:
        if len(configs) != 1:
            raise SystemExit("--in-process runs exactly one configuration")
        args.model, args.precision, args.jit, args.batch_size = configs[0]
        run_one(args)
        return 0
    failures = 0
    for m, p, j, b in configs:
        argv_one = [os.path.abspath(__file__), "--in-process", "--model", m, "--precision", p, "--jit", j,
                    "--batch-size", str(b), "--steps", str(args.steps), "--warmup", str(args.warmup)]
        argv_one += ["--smoke"] * args.smoke + ["--verbose"] * args.verbose
        argv_one += ["--inter-op-threads", str(args.inter_op_threads), "--preset", args.preset]
        code = common.run_isolated(argv_one)
        if code:
            print(f"bench=train  model={m}  precision={p}  jit={j}  batch={b}  FAILED exit={code}", flush=True)
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
