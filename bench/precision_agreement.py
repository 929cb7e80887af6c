"""Does mixed_bfloat16 training follow float32 training? Trains PermaKey twice from the same
initial weights on the same batches (float32, then mixed_bfloat16) and compares the losses after
``--steps`` steps (mean of the last ``--window`` steps) per loss term.

Default: a reduced model (narrower encoder and LSPNs, batch 8) so that 2 x 200 steps run in minutes
on a 2-core CPU; ``--paper`` uses the paper configuration at batch 32 (16 minutes there).

Examples:
  python bench/precision_agreement.py                 # reduced size, 200 steps
  python bench/precision_agreement.py --steps 5 --smoke
"""

from __future__ import annotations

import argparse
import sys


from bench import common  # noqa: E402

LOSSES = ("vae_loss", "lsp_loss", "pointnet_loss", "loss")


def train(precision: str, config, batches, steps: int, weights=None):
    import keras
    import numpy as np
    import tensorflow as tf

    from permakey_tf.models.permakey import PermaKey

    common.set_precision(precision)
    keras.utils.set_random_seed(0)
    model = PermaKey(config)
    if weights is not None:
        model.set_weights(weights)
    model.compile()
    step_fn = tf.function(model.train_step)
    history = {name: [] for name in LOSSES}
    for i in range(steps):
        logs = step_fn(batches[i % len(batches)])
        for name in LOSSES:
            history[name].append(float(np.asarray(logs[name])))
        for tracker in model.metrics:  # per-step losses, not running means
            tracker.reset_state()
    return model, history


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--window", type=int, default=10, help="average the last N steps' losses")
    parser.add_argument("--batch-size", type=int, default=None, help="default 32 with --paper, else 8")
    parser.add_argument("--num-batches", type=int, default=16, help="distinct batches, cycled")
    parser.add_argument("--paper", action="store_true", help="paper configuration instead of the reduced one")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.batch_size is None:
        args.batch_size = 32 if args.paper else 8
    if args.smoke:
        args.steps, args.window, args.batch_size, args.num_batches = 3, 1, 2, 2

    from permakey_tf.config import PermaKeyConfig

    if args.paper:
        config = PermaKeyConfig()
    elif args.smoke:
        config = PermaKeyConfig(encoder_filters=(4, 8, 8, 8), lsp_hidden_widths=(16, 8), num_keypoints=2)
    else:
        config = PermaKeyConfig(encoder_filters=(16, 32, 32, 32), lsp_hidden_widths=(128, 64, 32))
    batches = [common.random_frames(args.batch_size, seed=i) for i in range(args.num_batches)]
    reference, f32 = train("float32", config, batches, args.steps)
    weights = None
    # Same initial weights for bfloat16: rebuild float32 initial weights with the same seed.
    import keras

    from permakey_tf.models.permakey import PermaKey

    common.set_precision("float32")
    keras.utils.set_random_seed(0)
    weights = PermaKey(config).get_weights()
    _, bf16 = train("mixed_bfloat16", config, batches, args.steps, weights=weights)
    del reference
    w = args.window
    fields = {"bench": "precision", "steps": args.steps, "batch": args.batch_size, "config": "paper" if args.paper else "reduced"}
    for name in LOSSES:
        a = sum(f32[name][-w:]) / w
        b = sum(bf16[name][-w:]) / w
        fields[name] = f"f32={a:.5g},bf16={b:.5g},rel={100 * (b - a) / abs(a):+.1f}%"
    fields["load"] = common.load_average()
    print(common.format_line(fields), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
