"""Inference throughput: the exported SavedModel (permakey_tf/training/export.py, ``serving_default``) and
the Keras model's inference paths, one printed line per path, against the matrix-product ceiling
measured in the same process.

Paths:
  savedmodel     export_saved_model() -> tf.saved_model.load -> signatures["serving_default"]
                 on uint8 frames (what TF Serving runs).
  keras_call     tf.function(model(frames, training=False)), all outputs (PermaKey: with the
                 VAE reconstruction).
  keras_keypoints  PermaKey only: tf.function(model.predict_keypoints) (no latent head / decoder).

FLOP per frame is counted from each path's traced Keras graph (bench/common.py); the SavedModel
is counted as the export's serving function (export.serving_function), whose unused outputs
(the reconstruction) are dead code. util = frames/s x FLOP/frame / ceiling.

Examples:
  python bench/inference_throughput.py                      # PermaKey, float32, batch 32
  python bench/inference_throughput.py --precision mixed_bfloat16 --jit on
  python bench/inference_throughput.py --model transporter --smoke
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile


from bench import common  # noqa: E402
from bench.train_throughput import model_config  # noqa: E402
from permakey_tf.models.registry import MODELS, get_model_spec  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=MODELS, default="permakey")
    parser.add_argument("--precision", choices=("float32", "mixed_bfloat16", "mixed_float16"), default="float32")
    parser.add_argument("--jit", choices=("off", "on"), default="off", help="XLA for the Keras paths")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="timed batches per path")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--paths", nargs="+", default=("savedmodel", "keras_call", "keras_keypoints"))
    parser.add_argument("--smoke", action="store_true", help="tiny model, batch 2, 1 step")
    args = parser.parse_args(argv)
    if args.smoke:
        args.batch_size, args.steps, args.warmup = 2, 1, 1

    import keras
    import numpy as np
    import tensorflow as tf

    from permakey_tf.training import export

    common.set_precision(args.precision)
    keras.utils.set_random_seed(0)
    model = get_model_spec(args.model).model_class(model_config(args.model, args.smoke))
    frames = common.random_frames(args.batch_size, seed=0)
    model(frames[:1], training=False)
    modules = common.model_modules(model)
    spec = tf.TensorSpec(frames.shape, tf.uint8)
    jit = args.jit == "on"

    functions = {"keras_call": tf.function(lambda f: model(f, training=False), jit_compile=jit)}
    functions["keras_keypoints"] = tf.function(model.predict_keypoints, jit_compile=jit)
    flops = {name: common.graph_flops(fn.get_concrete_function(spec), modules).model_flops / args.batch_size
             for name, fn in functions.items()}
    # The serving function runs predict_keypoints inside a tf.cond (empty requests skip the
    # model), whose branches the graph counter does not enter: it serves the same FLOPs.
    flops["savedmodel_graph"] = flops["keras_keypoints"]

    runners = {}
    workdir = tempfile.mkdtemp(prefix="bench_export_")
    if "savedmodel" in args.paths:
        version_dir = export.export_saved_model(model, workdir)
        loaded = tf.saved_model.load(str(version_dir))
        signature = loaded.signatures[export.SIGNATURE_NAME]
        runners["savedmodel"] = (lambda: signature(**{export.INPUT_NAME: frames}), flops["savedmodel_graph"])
    for name in ("keras_call", "keras_keypoints"):
        if name in args.paths and name in functions:
            runners[name] = ((lambda fn: lambda: fn(frames))(functions[name]), flops[name])

    ceiling = common.matmul_ceiling(
        common.ceiling_dtype(args.precision), size=256 if args.smoke else None, repeats=3 if args.smoke else 5
    )
    for name, (run, flop_per_frame) in runners.items():
        def step(run=run):
            outputs = run()
            return {k: np.asarray(v) for k, v in outputs.items()}

        times, first = common.time_steps(step, args.warmup, args.steps)
        median = statistics.median(times)
        rate = args.batch_size / median
        print(
            common.format_line(
                {
                    "bench": "inference",
                    "model": args.model,
                    "path": name,
                    "precision": args.precision,
                    "jit": "n/a" if name == "savedmodel" else args.jit,
                    "batch": args.batch_size,
                    "frames/s": f"{rate:.2f}",
                    "step_s": f"{median:.3f}",
                    "first_step_s": f"{first:.1f}",
                    "GFLOP/frame": f"{flop_per_frame / 1e9:.2f}",
                    "ceiling_GFLOP/s": f"{ceiling / 1e9:.0f}",
                    "util": f"{100 * rate * flop_per_frame / ceiling:.0f}%",
                    "peak_mem": f"'{common.memory_text()}'",
                    "load": common.load_average(),
                    "device": f"'{common.describe_device()}'",
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
