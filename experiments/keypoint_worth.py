"""Which objects are worth a keypoint under PermaKey's own loss, for several keypoint sizes.

    python experiments/keypoint_worth.py RUN_DIR [--sigmas 0.1 0.05] [--split validation]

A keypoint's Gaussian window lowers the PointNet loss only where the error maps hold more mass
under it than about half the window's own (permakey_tf.scoring.diagnostics.keypoint_gain_maps). This
script computes the run's error maps of the test (or validation) frames (cached like experiments/pointnet_alone.py)
and, per object class (targets and HUD), prints the share of objects whose box (grown by one
pixel) holds a pixel of positive gain for each sigma: an object below that share cannot be found
by a PointNet trained on these maps, however long it trains.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pointnet_alone import cached_maps  # noqa: E402  (the run's error maps, cached)

from permakey_tf.scoring import diagnostics
from permakey_tf.evaluation import predictions
from permakey_tf.training import runs  # noqa: E402
from permakey_tf.scoring.matching import MetricSettings, target_mask  # noqa: E402


def worth_by_class(gain: np.ndarray, objects, settings: MetricSettings = MetricSettings()) -> dict[str, float]:
    """``[N, S, S]`` gain maps -> {class (HUD classes prefixed "HUD "): share of its objects whose
    box grown by ``settings.box_dilation`` pixels holds a pixel of positive gain}."""
    size = gain.shape[1]
    targets = target_mask(objects, settings)
    hud = objects.valid & objects.is_hud
    counts: dict[str, list[int]] = {}
    for i, j in zip(*np.nonzero(targets | hud)):
        ymin, xmin, ymax, xmax = objects.boxes[i, j] * size
        d = settings.box_dilation
        rows = slice(max(0, int(np.floor(ymin - d))), min(size, int(np.ceil(ymax + d))))
        cols = slice(max(0, int(np.floor(xmin - d))), min(size, int(np.ceil(xmax + d))))
        name = objects.class_names[objects.labels[i, j]] if objects.class_names else str(objects.labels[i, j])
        key = f"HUD {name}" if hud[i, j] else name
        worth = counts.setdefault(key, [0, 0])
        worth[0] += bool(gain[i, rows, cols].size and gain[i, rows, cols].max() > 0)
        worth[1] += 1
    return {name: found / total for name, (found, total) in sorted(counts.items())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.1, 0.05])
    parser.add_argument("--train-frames", type=int, default=3008, help="as pointnet_alone.py's cache")
    parser.add_argument("--out", default=None, help="JSON results (default RUN_DIR/keypoint_worth.json)")
    parser.add_argument("--split", default="test", choices=("validation", "test"))
    args = parser.parse_args(argv)

    run_dir = Path(args.run_dir)
    config = runs.load_config(run_dir)
    data = predictions.load_eval_set(config.game, "none", config.data.dataset_arguments(), split=args.split,
                                  progress=False)
    _, test_maps = cached_maps(run_dir, config, args.train_frames, data, args.split)
    results = {}
    for sigma in args.sigmas:
        gain = diagnostics.keypoint_gain_maps(test_maps, sigma)
        results[str(sigma)] = worth_by_class(gain, data.objects)
        shares = ", ".join(f"{name} {share:.2f}" for name, share in results[str(sigma)].items())
        print(f"sigma {sigma}: objects worth a keypoint: {shares}")
    out = Path(args.out) if args.out else run_dir / "keypoint_worth.json"
    out.write_text(json.dumps({"run": str(run_dir), "split": args.split, "frames": len(test_maps),
                               "by_sigma": results}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
