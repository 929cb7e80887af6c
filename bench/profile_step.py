"""Where the time of one PermaKey training step goes: a per-module timing breakdown.

The step is cut into the pieces it is made of; each piece is its own tf.function (forward +
gradients of its own loss, as in train_step) timed on the same batch, with its FLOPs counted from
its traced graph, so each line says how close that piece runs to the matmul ceiling:

  encoder_fwd      the encoder alone (inference of the features the other pieces consume)
  vae              encoder -> latent head -> decoder, VAE loss, gradients of encoder+head+decoder
  lspn_layer<l>    LSPN of encoder layer l on stop-gradient features: forward, loss, gradients
                   (the model's form: the first layer on the ring of neighbour cells); with
                   ``--lspn-forms`` also the straightforward patch-extraction form (the layer
                   built from ``extract_neighbour_patches``, one matmul) for comparison, and the
                   first layer's forward alone in the model's ring form (``_first_ring``) and as
                   a 3x3 convolution with the centre tap masked (``_first_conv3x3``, which
                   multiplies the zero tap too: its GFLOP/s count model work only)
  pointnet         error maps from the LSPN outputs -> PointNet -> keypoints -> Gaussian maps,
                   loss, gradients
  optimizers       the three Adam updates on precomputed gradients
  full_step        model.train_step (all of the above in one graph)

``sum_of_pieces`` vs ``full_step`` shows what graph-level overlap/overhead adds. ``--ops`` then
records a tf.profiler trace of ``--steps`` full steps and prints the time per op type (one
``bench=profile_op`` line each, with its share of all op time: matrix products vs convolutions vs
batch norm vs element-wise). ``--trace DIR`` keeps that trace in DIR (view it with TensorBoard and
the tensorboard-plugin-profile package, which this project does not install).

Examples:
  python bench/profile_step.py --precision mixed_bfloat16
  python bench/profile_step.py --preset quick --precision mixed_bfloat16 --ops   # the quick preset, batch 16
  python bench/profile_step.py --smoke
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile


from bench import common  # noqa: E402
from bench.lspn_forms import patch_form_prediction  # noqa: E402
from bench.train_throughput import model_config, preset_run_config  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precision", choices=("float32", "mixed_bfloat16", "mixed_float16"), default="float32")
    parser.add_argument("--jit", choices=("off", "on"), default="off")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default: 32, or the preset's batch size with --preset quick")
    parser.add_argument("--preset", default="paper", choices=("paper", "quick"),
                        help="the model config of a train.py preset (default: paper)")
    parser.add_argument("--steps", type=int, default=3, help="timed calls per piece")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--lspn-forms", action="store_true", help="also time the patch-extraction LSPN form")
    parser.add_argument("--trace", default=None, help="write a tf.profiler trace of full steps here")
    parser.add_argument("--ops", action="store_true", help="print the full step's time per op type")
    parser.add_argument("--top", type=int, default=12, help="op types printed by --ops")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.batch_size is None:
        args.batch_size = 32 if args.preset == "paper" else preset_run_config("permakey", args.preset).train.batch_size
    if args.smoke:
        args.batch_size, args.steps, args.warmup = 2, 1, 1

    import keras
    import numpy as np
    import tensorflow as tf

    from permakey_tf.models.permakey import PermaKey, scale_frames
    from permakey_tf.models.pointnet import keypoint_outputs, pointnet_loss

    common.set_precision(args.precision)
    keras.utils.set_random_seed(0)
    config = model_config("permakey", args.smoke, args.preset)
    model = PermaKey(config)
    model.compile()
    jit = args.jit == "on"
    frames = common.random_frames(args.batch_size, seed=0)
    x = scale_frames(frames, config.image_size)
    variables = model.module_variables()
    features = [tf.stop_gradient(f) for f in model.encoder(x, training=True)]

    def vae_piece(x):
        with tf.GradientTape() as tape:
            feats = model.encoder(x, training=True)
            mean, scale = model.latent_head(feats[-1])
            latent = mean + scale * model._standard_normal(tf.shape(mean))
            reconstruction = tf.cast(model.decoder(latent, training=True), tf.float32)
            rec = 0.5 * tf.reduce_mean(tf.square(x - reconstruction)) / config.vae_likelihood_variance
            kl = tf.reduce_mean(tf.reduce_sum(0.5 * (scale**2 + mean**2 - 1.0) - tf.math.log(scale), -1))
            loss = rec + config.kl_weight * kl
        return tape.gradient(loss, variables["vae"])

    def lspn_piece(lspn, patch_form):
        def piece(feature):
            with tf.GradientTape() as tape:
                if patch_form:
                    prediction, target = patch_form_prediction(lspn, feature, training=True)
                else:
                    prediction, target = lspn(feature, training=True)
                loss = tf.reduce_mean(tf.square(tf.cast(prediction, tf.float32) - tf.cast(target, tf.float32)))
            return tape.gradient(loss, lspn.trainable_variables)
        return piece

    lspn_outputs = [lspn(features[layer], training=True) for layer, lspn in zip(config.lsp_layers, model.lspns)]
    predictions = [p for p, _ in lspn_outputs]
    targets = [t for _, t in lspn_outputs]
    shapes = [features[layer].shape for layer in config.lsp_layers]

    def pointnet_piece(predictions, targets):
        with tf.GradientTape() as tape:
            maps = tf.stop_gradient(model._error_maps(predictions, targets, shapes))
            outputs = keypoint_outputs(model.pointnet, config, maps, training=True)
            loss = pointnet_loss(outputs, maps, config)
        return tape.gradient(loss, variables["pointnet"])

    all_variables = [v for m in ("vae", "lsp", "pointnet") for v in variables[m]]
    gradients = [tf.zeros(v.shape, v.dtype) for v in all_variables]

    def optimizer_piece(gradients):
        start = 0
        for module in ("vae", "lsp", "pointnet"):
            n = len(variables[module])
            model._module_optimizer(module).apply(gradients[start:start + n], variables[module])
            start += n
        return tf.constant(0.0)

    pieces = [
        ("encoder_fwd", lambda x: model.encoder(x, training=True), (x,)),
        ("vae", vae_piece, (x,)),
    ]
    for layer, lspn, cells in zip(config.lsp_layers, model.lspns, targets):
        pieces.append((f"lspn_layer{layer}", lspn_piece(lspn, False), (features[layer],)))
        if args.lspn_forms:
            pieces.append((f"lspn_layer{layer}_patchform", lspn_piece(lspn, True), (features[layer],)))
            pieces += [(f"lspn_layer{layer}_first_{form}", first_layer_forward(lspn, form), (cells,))
                       for form in ("ring", "conv3x3")]
    pieces += [
        ("pointnet", pointnet_piece, (predictions, targets)),
        ("optimizers", optimizer_piece, (gradients,)),
        ("full_step", model.train_step, (frames,)),
    ]

    ceiling = common.matmul_ceiling(
        common.ceiling_dtype(args.precision), size=256 if args.smoke else None, repeats=3 if args.smoke else 5
    )
    modules = common.model_modules(model)
    print(f"# profile of one PermaKey training step: {args.preset} config, batch {args.batch_size}, {args.precision}, jit {args.jit}, "
          f"ceiling {ceiling / 1e9:.0f} GFLOP/s, load {common.load_average()}, {common.describe_device()}")
    total = 0.0
    for name, fn, inputs in pieces:
        function = tf.function(fn, jit_compile=jit)
        specs = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), inputs)
        count = common.graph_flops(function.get_concrete_function(*specs), modules)

        def step(function=function, inputs=inputs):
            return tf.nest.map_structure(lambda t: np.asarray(t), function(*inputs))

        times, _ = common.time_steps(step, args.warmup, args.steps)
        median = statistics.median(times)
        if name not in ("full_step", "encoder_fwd") and "_patchform" not in name and "_first_" not in name:
            total += median
        print(common.format_line({
            "bench": "profile",
            "piece": name,
            "ms": f"{1000 * median:.0f}",
            "GFLOP": f"{count.model_flops / 1e9:.1f}",
            "GFLOP/s": f"{count.model_flops / median / 1e9:.0f}",
            "util": f"{100 * count.model_flops / median / ceiling:.0f}%",
        }), flush=True)
    print(common.format_line({"bench": "profile", "piece": "sum_of_pieces", "ms": f"{1000 * total:.0f}",
                              "peak_mem": f"'{common.memory_text()}'", "load": common.load_average()}), flush=True)
    if args.trace or args.ops:
        trace_dir = args.trace or tempfile.mkdtemp(prefix="permakey_trace_")
        step_fn = tf.function(model.train_step, jit_compile=jit)
        step_fn(frames)
        tf.profiler.experimental.start(trace_dir)
        for _ in range(args.steps):
            np.asarray(step_fn(frames)["loss"])
        tf.profiler.experimental.stop()
        if args.ops:
            print_op_times(common.trace_op_times(trace_dir), args.steps, args.top)
        if args.trace:
            print(f"# tf.profiler trace written to {args.trace}")
        else:
            shutil.rmtree(trace_dir, ignore_errors=True)
    return 0


def first_layer_forward(lspn, form: str):
    """The LSPN's first layer (before its batch norm) on a cell grid ``[B, gh, gw, d]``: the
    model's ring form (``cell_grid.neighbour_conv``) or the masked 3x3 convolution it replaced."""
    import tensorflow as tf

    from permakey_tf.models import cell_grid

    def forward(cells):
        # In the layer's name scope, so that FLOP counts attribute (and discount) its zero tap.
        with tf.name_scope(lspn.name):
            kernel = tf.cast(lspn.first_kernel, cells.dtype)
            if form == "ring":
                return cell_grid.neighbour_conv(cells, kernel, lspn.border)
            padded = cell_grid.pad_cells(cells, lspn.border)
            return tf.nn.conv2d(padded, cell_grid.centre_masked(kernel), strides=1, padding="VALID")

    return forward


def print_op_times(times: dict[str, float], steps: int, top: int) -> None:
    """One line per op type, largest first: ms per step (summed over TensorFlow's compute
    threads) and share of all op time; the rest summed in one ``op=other`` line."""
    total = sum(times.values()) or 1.0
    ranked = sorted(times.items(), key=lambda item: -item[1])
    rest = sum(seconds for _, seconds in ranked[top:])
    for op_type, seconds in ranked[:top] + ([("other", rest)] if rest else []):
        print(common.format_line({
            "bench": "profile_op",
            "op": op_type,
            "ms_per_step": f"{1000 * seconds / steps:.0f}",
            "share": f"{100 * seconds / total:.1f}%",
        }), flush=True)


if __name__ == "__main__":
    sys.exit(main())
