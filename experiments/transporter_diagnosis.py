"""Why a trained Transporter's keypoints do or do not track (permakey_tf.evaluation.transport_diagnosis).

    python experiments/transporter_diagnosis.py RUN_DIR [RUN_DIR ...] [--split validation]
        [--pairs 256] [--data-dir DIR] [--out DIR]

For each run: its checkpoint, the (source, target) pairs of ``--split`` drawn as the run trained
(its pair config, evaluation mode: fixed pairs), and the diagnosis: reconstruction error with the
model's own keypoints, with none, with its fixed layout, and of copying the source; the same on
the pixels that changed; per-keypoint heatmap spread and motion. Prints one block per run and
writes ``transport_diagnosis.json`` and ``transport_diagnosis.png`` (where pairs change, the
keypoints of every target frame over one frame, and one pair's reconstructions) into ``--out``
(default: the run folder).

With ``--by-class`` it measures instead where the loss is: the pairs are the run's window pairs of
the split (every source-target combination its pair config allows, ``--pairs`` of them evenly
spaced) with their object boxes, and for each object class (and the pixels outside every box) it
prints the share of the frame it covers and the share of three per-pixel errors that falls on it:
copying the source (what changes between the frames), the reconstruction with no keypoint, and
with the model's own keypoints; and which share of the region's no-keypoint error the own
keypoints remove. Writes ``transport_error_by_class.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("--split", default="validation", choices=("train", "validation", "test"))
    parser.add_argument("--pairs", type=int, default=256, help="at most this many pairs")
    parser.add_argument("--data-dir", default=None, help="TFDS data directory (default: the run's)")
    parser.add_argument("--out", default=None, help="output folder (default: each run folder)")
    parser.add_argument("--by-class", action="store_true",
                        help="where the loss is, per object class (module docstring)")
    return parser.parse_args(argv)


def load_run_pairs(run, split: str, max_pairs: int, data_dir=None):
    """uint8 ``(source [N, S, S, 3], target [N, S, S, 3])``: the run's pairs of ``split``
    (evaluation mode, the run's seed and noise), at most ``max_pairs``."""
    from permakey_tf.data import loading, pipelines
    from permakey_tf.data.noise import NoiseConfig

    data = run.config.data
    batches = loading.load_pairs(
        run.game, split, training=False, batch_size=64, seed=run.config.seed,
        noise=NoiseConfig(mode=data.noise), pairs=pipelines.PairConfig(**(data.pairs or {})),
        build_if_missing=False, **data.dataset_arguments(data_dir),
    )
    sources, targets = [], []
    for source, target in batches.as_numpy_iterator():
        sources.append(source)
        targets.append(target)
        if sum(len(s) for s in sources) >= max_pairs:
            break
    if not sources:
        raise SystemExit(f"transporter_diagnosis.py: the {split} split of {run.path} holds no pair; "
                         "try --split train")
    return np.concatenate(sources)[:max_pairs], np.concatenate(targets)[:max_pairs]


def load_window_pairs_with_objects(run, split: str, max_pairs: int, data_dir=None):
    """``(source [P, S, S, 3], target [P, S, S, 3], source ObjectSet, target ObjectSet)``: at most
    ``max_pairs`` of the run's window pairs of ``split`` (evenly spaced over all of them), clean."""
    from permakey_tf.data import pipelines
    from permakey_tf.evaluation.predictions import load_eval_set
    from permakey_tf.evaluation.transport_diagnosis import window_pair_indices

    data = load_eval_set(run.game, "none", run.config.data.dataset_arguments(data_dir), split=split,
                         progress=False)
    pairs = pipelines.PairConfig(**(run.config.data.pairs or {}))
    sources, targets = window_pair_indices(data.episode_ids, pairs.window_length, pairs.source_range,
                                           pairs.target_range)
    if len(sources) == 0:
        raise SystemExit(f"transporter_diagnosis.py: the {split} split of {run.game} has no episode "
                         f"of {pairs.window_length} frames; try --split train")
    chosen = np.unique(np.linspace(0, len(sources) - 1, min(max_pairs, len(sources))).round().astype(int))
    sources, targets = sources[chosen], targets[chosen]
    return (data.clean[sources], data.clean[targets], data.objects.take(sources),
            data.objects.take(targets))


def error_by_class(model, run, args) -> dict:
    """Per class, its area share and the share of each error map on it (module docstring)."""
    from permakey_tf.evaluation import transport_diagnosis as diagnosis

    source, target, source_objects, target_objects = load_window_pairs_with_objects(
        run, args.split, args.pairs, args.data_dir)
    regions = diagnosis.class_regions(source_objects, target_objects, model.config.image_size)
    maps = diagnosis.reconstruction_error_maps(model, source, target)
    by_error = {name: diagnosis.region_error_shares(error, regions) for name, error in maps.items()}
    totals = {f"{error}_mean": float(values.mean()) for error, values in maps.items()}
    classes = {}
    for name, mask in regions.items():
        # How much of the region's no-keypoint error the model's own keypoints remove.
        none = float(maps["no_keypoints"][mask].sum())
        removed = 1.0 - float(maps["own"][mask].sum()) / none if none > 0 else 0.0
        classes[name] = {"area_share": by_error["own"][name]["area_share"],
                         **{f"{error}_share": by_error[error][name]["error_share"] for error in maps},
                         "explained_by_keypoints": removed}
    return {"pairs": int(len(source)), **totals, "classes": classes}


def print_error_by_class(label: str, split: str, result: dict) -> None:
    print(f"{label} ({split}, {result['pairs']} window pairs): share of each per-pixel error per region")
    print(f"  squared error per pixel: copy source {result['copy_source_mean']:.3g}, "
          f"no keypoints {result['no_keypoints_mean']:.3g}, own keypoints {result['own_mean']:.3g}")
    print(f"  {'region':18s} {'area':>6s} {'copy':>6s} {'no kp':>6s} {'own':>6s} {'removed by kp':>14s}")
    for name, shares in sorted(result["classes"].items(), key=lambda item: -item[1]["copy_source_share"]):
        print(f"  {name:18s} {shares['area_share']:6.3f} {shares['copy_source_share']:6.3f} "
              f"{shares['no_keypoints_share']:6.3f} {shares['own_share']:6.3f} "
              f"{shares['explained_by_keypoints']:14.2f}")


def draw(model, diagnosis, source, target, path: Path, title: str) -> None:
    """Three panels: change map, every target frame's keypoints over the first target, and the
    first pair's reconstruction with the own keypoints and with none."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from permakey_tf import viz
    from permakey_tf.models import ops

    outputs = model(target, training=False)
    pixels = outputs["keypoints_pixels"].numpy()  # [N, K, 2] (x, y)
    s, t = (ops.scale_frames(frames[:1], model.config.image_size) for frames in (source, target))
    own = model.transport_images(s, t)["reconstruction"].numpy()[0]
    none = model.reconstruct_with_keypoints(s, t, None, None).numpy()[0]
    fig, axes = plt.subplots(1, 5, figsize=(12, 2.8))
    size = target.shape[1]
    axes[0].imshow(diagnosis.change_map, cmap="magma", vmin=0, vmax=max(1e-6, diagnosis.change_map.max()))
    axes[0].set_title(f"changed pixels\n(share {diagnosis.changed_pixel_share:.3f})", fontsize=8)
    axes[1].imshow(target[0], extent=(0, size, size, 0), interpolation="nearest")
    colors = viz.keypoint_colors(pixels.shape[1]) / 255.0
    for k in range(pixels.shape[1]):
        axes[1].scatter(pixels[:, k, 0], pixels[:, k, 1], s=4, color=colors[k], alpha=0.5)
    axes[1].set_title("keypoints of all targets", fontsize=8)
    for ax, image, name in ((axes[2], source[0], "source"), (axes[3], own, "reconstruction"),
                            (axes[4], none, "no keypoints")):
        ax.imshow(np.clip(image, 0, 255 if image.dtype == np.uint8 else 1), interpolation="nearest")
        ax.set_title(name, fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    import keras

    import permakey_tf.models.transporter  # noqa: F401  (registers the classes)
    from permakey_tf.evaluation.transport_diagnosis import diagnose_transporter
    from permakey_tf.provenance import provenance
    from permakey_tf.training import runs

    for run_dir in args.run_dirs:
        run = runs.read_run_folder(run_dir)
        if run.model != "transporter" or run.checkpoint is None:
            raise SystemExit(f"transporter_diagnosis.py: {run_dir} is not a Transporter run with "
                             f"{runs.CHECKPOINT}")
        model = keras.models.load_model(run.checkpoint, compile=False)
        out = Path(args.out) if args.out else run.path
        out.mkdir(parents=True, exist_ok=True)
        if args.by_class:
            result = {"run": str(run.path), "split": args.split, "command": " ".join(sys.argv),
                      **provenance(), **error_by_class(model, run, args)}
            stem = "transport_error_by_class" if args.out is None else f"transport_error_by_class_{run.path.name}"
            (out / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
            print_error_by_class(run.label, args.split, result)
            continue
        source, target = load_run_pairs(run, args.split, args.pairs, args.data_dir)
        diagnosis = diagnose_transporter(model, source, target)
        summary = {"run": str(run.path), "split": args.split, **diagnosis.summary()}
        stem = "transport_diagnosis" if args.out is None else f"transport_diagnosis_{run.path.name}"
        (out / f"{stem}.json").write_text(json.dumps(summary, indent=1) + "\n")
        draw(model, diagnosis, source, target, out / f"{stem}.png", run.label)
        print(f"{run.label} ({args.split}, {diagnosis.pairs} pairs)")
        for name in ("mse_own", "mse_no_keypoints", "mse_fixed_layout", "mse_copy_source",
                     "mse_own_changed", "mse_no_keypoints_changed", "mse_fixed_layout_changed",
                     "changed_pixel_share", "loss_ratio_fixed", "loss_ratio_fixed_changed",
                     "keypoint_share_of_changed_error"):
            print(f"  {name:34s} {summary[name]:.4f}")
        for name in ("heatmap_spread_px", "keypoint_motion_px"):
            print(f"  {name:34s} " + " ".join(f"{v:5.1f}" for v in summary[name]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
