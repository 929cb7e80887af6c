"""How precisely a trained model's keypoints hold the game's state when they are read near each
heatmap's peak instead of from the softmax over the whole map (docs/notes/one-seed-results.md, "Reading the
keypoints near the heatmap peak").

    python experiments/keypoint_readout_window.py RUN_DIR [--radii 1 2 3] [--mean-shift 1 2 4]
        [--error-map-blocks 2 4] [--data-dir DIR] [--out F]

Runs the model once over the probes' train / validation / test frames (probe_state.py's splits),
keeps the heatmap logits, and turns them into keypoints by the model's own reduction ("whole
map") and by peak_window_keypoints (here) for each radius. For each: the AtariARI-style probe of the
encoded keypoints (agent localisation and the mean over categories) and the best single
coordinate's readout of each position variable (permakey_tf.probes.coordinate_readout), as probe_state.py
prints them. "whole map" is the keypoint network's own soft-argmax keypoints, unrefined; with
--mean-shift, rows for those keypoints moved by that many mean-shift steps on the error maps
(ops.mean_shift_keypoints, PermaKey; the model's outputs are the row with its
keypoint_refinement_steps). With --error-map-blocks, the same probe of the error maps the
keypoints are read from (PermaKey): what its keypoint network had to work with. Nothing is
retrained: the model and frames are the same in every row.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from permakey_tf.evaluation import predictions
from permakey_tf.probes import probe_inputs, ram_annotations, representations, state_probe
from permakey_tf.training import runs
from permakey_tf.models.registry import get_model_spec


def _cell_centres(size: int):
    """The keypoint coordinate of each of ``size`` cells, as ``ops.heatmaps_to_keypoints`` reads
    them: ``linspace(-1, 1, size)`` (one cell at 0)."""
    import tensorflow as tf

    return tf.zeros([1]) if size == 1 else tf.linspace(-1.0, 1.0, size)


def peak_window_keypoints(heatmaps, radius: int):
    """Keypoints from heatmap logits, read near each map's peak only: the expected ``(y, x)`` of a
    softmax restricted to the ``(2 radius + 1)^2`` cells around the map's largest logit.

    The softmax over the whole map (``ops.heatmaps_to_keypoints``, ``"spatial"``) also averages
    in the weight the map leaves on every other cell; that weight pulls the keypoint towards the
    map's centre and changes from frame to frame with whatever else is in the frame. Restricted
    to the peak's neighbourhood, the keypoint keeps the sub-cell interpolation between the peak
    and its neighbours and loses the rest. The window is cut at the map's border. The peak's
    choice has no gradient; the coordinate has one through the logits in the window.

    Args:
      heatmaps: ``[B, H, W, K]`` logits.
      radius: window half-width in cells, >= 0 (0 = the peak cell's coordinates).

    Returns:
      ``[B, K, 2]`` keypoints ``(y, x)`` in ``[-1, 1]``, float32.
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0 cells, got {radius}")
    import tensorflow as tf

    heatmaps = tf.cast(heatmaps, tf.float32)
    height, width = heatmaps.shape[1], heatmaps.shape[2]
    batch, channels = tf.shape(heatmaps)[0], heatmaps.shape[3]
    peak = tf.argmax(tf.reshape(heatmaps, [batch, height * width, channels]), axis=1,
                     output_type=tf.int32)  # [B, K]
    rows = tf.range(height)[None, :, None, None]
    columns = tf.range(width)[None, None, :, None]
    inside = ((tf.abs(rows - (peak // width)[:, None, None, :]) <= radius)
              & (tf.abs(columns - (peak % width)[:, None, None, :]) <= radius))  # [B, H, W, K]
    masked = tf.reshape(tf.where(inside, heatmaps, tf.fill(tf.shape(heatmaps), -1e30)), [batch, height * width, channels])
    weights = tf.reshape(tf.nn.softmax(masked, axis=1), [batch, height, width, channels])
    y = tf.einsum("bhk,h->bk", tf.reduce_sum(weights, axis=2), _cell_centres(height))
    x = tf.einsum("bwk,w->bk", tf.reduce_sum(weights, axis=1), _cell_centres(width))
    return tf.stack([y, x], axis=-1)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("run_dir", help="a train.py run folder with a Keras checkpoint")
    parser.add_argument("--radii", type=int, nargs="+", default=[0, 1, 2, 3],
                        help="window half-widths in heatmap cells")
    parser.add_argument("--data-dir", default=None, help="TFDS data directory (default: the run's)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mean-shift", type=int, nargs="*", default=[],
                        help="also read the keypoints moved by this many mean-shift steps on the "
                        "model's error maps (ops.mean_shift_keypoints; PermaKey only)")
    parser.add_argument("--mean-shift-background", default="median", choices=("median", "none"))
    parser.add_argument("--error-map-blocks", type=int, nargs="*", default=[],
                        help="also probe the error maps the keypoints are read from, averaged over "
                        "blocks of these sizes in pixels (e.g. 2 4; PermaKey only)")
    parser.add_argument("--out", default=None, help="JSON file for the rows (default: print only)")
    return parser.parse_args(argv)


def model_maps(predictor, frames: dict, batch_size: int, names) -> dict:
    """{name: {split: [N, h, w, C]}} the model's map outputs named in ``names`` ("heatmaps": the
    logits; "error_maps"), from one pass over the frames."""
    result = {name: {} for name in names}
    for split, values in frames.items():
        batches = [predictor(values[start:start + batch_size]) for start in range(0, len(values), batch_size)]
        for name in names:
            result[name][split] = np.concatenate([np.asarray(b[name], np.float32) for b in batches])
    return result


def block_means(maps: np.ndarray, factor: int) -> np.ndarray:
    """``[N, h, w, C]`` -> ``[N, (h / factor) * (w / factor) * C]``, means over factor x factor blocks."""
    n, h, w, c = maps.shape
    return maps.reshape(n, h // factor, factor, w // factor, factor, c).mean((2, 4)).reshape(n, -1)


def readout_keypoints(logits: dict, radius, reduction: str, error_maps: dict | None = None,
                      mean_shift: int = 0, sigma: float = 0.1, background: str = "median") -> dict:
    """{split: [N, K, 2]} (x, y) pixel keypoints; radius None = the model's own reduction, then
    ``mean_shift`` steps of ops.mean_shift_keypoints on ``error_maps`` (0 = none)."""
    import tensorflow as tf

    from permakey_tf.models import ops

    pixels = {}
    for split, maps in logits.items():
        maps = tf.constant(maps)
        keypoints = (ops.heatmaps_to_keypoints(maps, reduction) if radius is None
                     else peak_window_keypoints(maps, radius))
        if mean_shift:
            keypoints = tf.concat([
                ops.mean_shift_keypoints(keypoints[i:i + 256], error_maps[split][i:i + 256], sigma,
                                         mean_shift, background)
                for i in range(0, len(error_maps[split]), 256)], 0)
        pixels[split] = ops.keypoints_to_pixels(keypoints).numpy().astype(np.float64)
    return pixels


def main(argv=None) -> int:

    args = parse_args(argv)
    run = runs.read_run_folder(args.run_dir)
    if run.checkpoint is None:
        raise SystemExit(f"{run.path} has no Keras checkpoint (the heatmaps come from it)")
    if (args.error_map_blocks or args.mean_shift) and not get_model_spec(run.model).has_error_maps:
        raise SystemExit(f"--error-map-blocks and --mean-shift need a PermaKey run ({run.path} is "
                         f"{run.model}: it has no error maps)")
    splits = probe_inputs.load_probe_splits(run.game, run.config.data.dataset_arguments(args.data_dir),
                                           "none", args.seed, None, progress=False)
    variables = state_probe.kept_variables(splits.ram["train"], ram_annotations.ram_variables(run.game),
                                           state_probe.ProbeSettings().entropy_threshold)
    predictor = predictions.load_predictor(run, "checkpoint")
    maps = model_maps(predictor, splits.frames, args.batch_size,
                      ["heatmaps", "error_maps"] if args.error_map_blocks or args.mean_shift
                      else ["heatmaps"])
    logits = maps["heatmaps"]
    model_config = run.config.model_config
    readouts_wanted = [(radius, 0) for radius in [None, *args.radii]]
    readouts_wanted += [(None, steps) for steps in args.mean_shift]
    rows = {}
    for radius, steps in readouts_wanted:
        name = "whole map" if radius is None else f"window radius {radius}"
        if steps:
            name += f", mean shift {steps} ({args.mean_shift_background})"
        pixels = readout_keypoints(logits, radius, model_config.keypoint_reduction,
                                   maps.get("error_maps"), steps, model_config.keypoint_sigma,
                                   args.mean_shift_background)
        encoded = {split: representations.encode_coordinates(p) for split, p in pixels.items()}
        probe = state_probe.probe_representation(
            state_probe.ProbeData(encoded, splits.ram, splits.test_mask), variables,
            state_probe.ProbeSettings(seed=args.seed))
        coordinates = {split: representations.keypoint_coordinates(p) for split, p in pixels.items()}
        readouts = probe_inputs.position_readouts(coordinates, splits, variables)
        rows[name] = {"probe": probe, "readouts": readouts}
        summary = probe["summary"]
        print(f"{name}: probe agent localisation {summary.get('agent_localization', float('nan')):.3f}, "
              f"mean over categories {summary['mean_over_categories']:.3f}")
        for variable, readout in readouts.items():
            if "error" in readout:
                continue
            print(f"    {variable}: kp{readout['keypoint']} {readout['axis']} corr {readout['correlation']:.2f} "
                  f"tracked {readout['tracked_share']:.2f} median error {readout['abs_error_quantiles']['q50']:.2f} "
                  f"exact {readout['within']['0']:.2f} within1 {readout['within']['1']:.2f} F1 {readout['f1']:.3f}")
    for factor in args.error_map_blocks:
        name = f"error maps, {factor}x{factor} px block means"
        flat = {split: block_means(values, factor) for split, values in maps["error_maps"].items()}
        probe = state_probe.probe_representation(
            state_probe.ProbeData(flat, splits.ram, splits.test_mask), variables,
            state_probe.ProbeSettings(seed=args.seed))
        rows[name] = {"probe": probe}
        summary = probe["summary"]
        print(f"{name}: probe agent localisation {summary.get('agent_localization', float('nan')):.3f}, "
              f"mean over categories {summary['mean_over_categories']:.3f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"run": str(run.path), "rows": rows}, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
