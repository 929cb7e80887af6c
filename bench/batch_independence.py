"""Does a served frame get the same keypoints alone as in a batch? Prints one line per run.

    python bench/batch_independence.py RUN_DIR [RUN_DIR ...] [--frames 300] [--source savedmodel]

For the first ``--frames`` test frames of each run's dataset: keypoints of every frame sent alone,
of all of them in one batch, and of the same batch reversed; the line gives the mean and max
distance (pixels) between alone and batched, and between reversed and batched. With BatchNorm's
inference statistics (the default since precise BatchNorm) all are ~0; with
``--batch-statistics`` (the research switch, checkpoint only) they are not.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from permakey_tf.evaluation import predictions
from permakey_tf.training import runs


def distances(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    d = np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64), axis=-1)
    return float(d.mean()), float(d.max())


def main(argv=None) -> int:

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--source", choices=("savedmodel", "checkpoint"), default="savedmodel")
    parser.add_argument("--batch-statistics", action="store_true")
    args = parser.parse_args(argv)
    for path in args.run_dirs:
        run = runs.read_run_folder(path)
        predictor = predictions.load_predictor(run, args.source, args.batch_statistics)
        data = predictions.load_eval_set(run.game, "none", run.config.data.dataset_arguments(None),
                                      max_frames=args.frames, progress=False)
        frames = data.frames

        def keypoints(batch):
            return predictor(batch)["keypoints_pixels"]

        together = keypoints(frames)
        alone = np.concatenate([keypoints(frames[i:i + 1]) for i in range(len(frames))])
        reversed_ = keypoints(frames[::-1])[::-1]
        alone_mean, alone_max = distances(alone, together)
        rev_mean, rev_max = distances(reversed_, together)
        print(f"bench=batch_independence  run={run.label}  source={args.source}  "
              f"batch_statistics={args.batch_statistics}  frames={len(frames)}  "
              f"alone_vs_batch_px mean={alone_mean:.4f} max={alone_max:.4f}  "
              f"reversed_vs_batch_px mean={rev_mean:.4f} max={rev_max:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
