"""Why a trained Transporter's keypoints do or do not track: its own loss, asked with other keypoints.

Transporter learns keypoints only through its reconstruction of a target frame from a source
frame's features with the target's features pasted around the keypoints. When its keypoints
freeze, one of three things is true, and :func:`diagnose_transporter` measures each on a set of
``(source, target)`` pairs:

* the reconstruction does not need the keypoints: the target decoded with *no* keypoint (all
  Gaussian maps zero, so the decoder sees the source's features unchanged) is about as good as
  with the model's own (``mse_no_keypoints`` against ``mse_own``);
* per-frame placement does not pay: every keypoint at its mean position over the pairs (the
  model's fixed layout) reconstructs as well (``loss_ratio_fixed = mse_own / mse_fixed_layout``,
  below 1 = moving keypoints pay on the model's own terms, as PermaKey's PointNet loss ratio;
  ``loss_ratio_fixed_changed`` the same on the changed pixels alone, where a static background
  cannot dilute it);
* the pair carries little to transport: the share of pixels that differ between source and target
  (``changed_pixel_share``), and the error on those pixels alone (``*_changed``), where the
  objects that moved are.

It also reports the keypoints themselves: ``heatmap_spread_px`` (per keypoint, the mean over
frames of the standard deviation of the weights the keypoint is the expectation of, in frame
pixels: a flat heatmap over a 42x42 map gives about 0.41 x the frame size) and
``keypoint_motion_px`` (per keypoint, the standard deviation of its position over the target
frames; 0 = the same place in every frame).

On the data alone, :func:`window_pair_indices` and :func:`pair_motion` say how far each object
class moves between the frames of the pairs Transporter can draw (experiments/pair_motion.py).

Where the loss is: :func:`class_regions` marks, per pair, the pixels of each object class (its
boxes in the source and in the target frame, grown by a margin, since a moved object changes the
pixels it left and the ones it entered), and :func:`region_error_shares` says which share of a
per-pixel error map falls in each region. Applied to the copy-the-source error (what changes
between the frames) it says where the reconstruction loss can be lowered at all; applied to the
error with no keypoints and with the model's own (:func:`reconstruction_error_maps`) it says which
regions the keypoints explain. Regions of different classes may overlap, so shares need not sum
to 1; ``outside objects`` is every pixel in no box.

Everything runs in inference mode (BatchNorm's moving averages), as evaluate.py scores keypoints.
Frames are uint8 ``[N, S, S, 3]``; errors are mean squared errors of [0, 1] pixel values.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# A pixel "changed" between source and target when a channel moved by more than this ([0, 1] units).
CHANGE_THRESHOLD = 0.1


@dataclasses.dataclass(frozen=True)
class TransportDiagnosis:
    """What :func:`diagnose_transporter` measured (module docstring: the meaning of each field).

    Per-keypoint fields are lists of length K; ``change_map`` is ``[S, S]``, the share of pairs in
    which each pixel changed.
    """

    pairs: int
    mse_own: float
    mse_no_keypoints: float
    mse_fixed_layout: float
    mse_copy_source: float
    mse_own_changed: float
    mse_no_keypoints_changed: float
    mse_fixed_layout_changed: float
    changed_pixel_share: float
    loss_ratio_fixed: float
    loss_ratio_fixed_changed: float
    keypoint_share_of_changed_error: float
    heatmap_spread_px: list
    keypoint_motion_px: list
    fixed_layout_px: list
    change_map: np.ndarray

    def summary(self) -> dict:
        """The scalar and per-keypoint fields as JSON-ready values (without the change map)."""
        values = dataclasses.asdict(self)
        values.pop("change_map")
        return values


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, 1 when both are 0 (nothing to reconstruct: no gain either way)."""
    return numerator / denominator if denominator > 0 else 1.0


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def keypoint_spread(y_weights: np.ndarray, x_weights: np.ndarray, image_size: int) -> np.ndarray:
    """Standard deviation of a keypoint's position under its heatmap's weights, in frame pixels.

    Args:
      y_weights: ``[B, H, K]``, x_weights: ``[B, W, K]``, each summing to 1 over its axis
        (``ops.heatmap_marginals``) on a ``linspace(-1, 1)`` grid.
      image_size: S, the frame side the [-1, 1] range spans.

    Returns:
      ``[B, K]`` sqrt(var_y + var_x), in pixels of the S x S frame.
    """
    def variance(weights):
        grid = np.linspace(-1.0, 1.0, weights.shape[1])[None, :, None]
        mean = (weights * grid).sum(axis=1, keepdims=True)
        return (weights * (grid - mean) ** 2).sum(axis=1)

    scale = (image_size - 1) / 2.0
    return np.sqrt(variance(y_weights) + variance(x_weights)) * scale


def diagnose_transporter(model, source: np.ndarray, target: np.ndarray, batch_size: int = 32,
                         change_threshold: float = CHANGE_THRESHOLD) -> TransportDiagnosis:
    """Measures a Transporter on ``(source, target)`` pairs (module docstring).

    Args:
      model: a built ``permakey_tf.models.transporter.Transporter``.
      source, target: uint8 ``[N, S, S, 3]``, pair i = (source[i], target[i]).
      batch_size: pairs per forward pass.
      change_threshold: a pixel changed when a channel differs by more than this ([0, 1] units).

    Returns:
      A :class:`TransportDiagnosis`.
    """
    import tensorflow as tf

    from permakey_tf.models import ops

    source, target = np.asarray(source), np.asarray(target)
    if source.shape != target.shape or source.ndim != 4 or len(source) == 0:
        raise ValueError(f"source and target must be non-empty uint8 [N, S, S, 3] arrays of one shape, "
                         f"got {source.shape} and {target.shape}")
    config = model.config
    size = config.image_size

    # Pass 1: both frames' keypoints, the targets' heatmap spread.
    source_keypoints, target_keypoints, spreads = [], [], []
    for part in _batches(len(source), batch_size):
        outputs = model(target[part], training=False)
        target_keypoints.append(outputs["keypoints"].numpy())
        y_weights, x_weights = ops.heatmap_marginals(outputs["heatmaps"], config.keypoint_reduction)
        spreads.append(keypoint_spread(y_weights.numpy(), x_weights.numpy(), size))
        source_keypoints.append(model(source[part], training=False)["keypoints"].numpy())
    source_keypoints = np.concatenate(source_keypoints)
    target_keypoints = np.concatenate(target_keypoints)
    layout = np.concatenate([source_keypoints, target_keypoints]).mean(axis=0)  # [K, 2] (y, x)

    # Pass 2: reconstructions with the own keypoints, none, and the fixed layout.
    squared = {"own": [], "no_keypoints": [], "fixed_layout": [], "copy_source": []}
    changed_masks = []
    for part in _batches(len(source), batch_size):
        s = ops.scale_frames(source[part], size, "diagnose_transporter")
        t = ops.scale_frames(target[part], size, "diagnose_transporter")
        difference = s.numpy() - t.numpy()
        n = len(source[part])
        fixed = tf.constant(np.broadcast_to(layout, (n,) + layout.shape), tf.float32)
        keypoint_sets = {
            "own": (source_keypoints[part], target_keypoints[part]),
            "no_keypoints": (None, None),
            "fixed_layout": (fixed, fixed),
        }
        for name, (source_kp, target_kp) in keypoint_sets.items():
            reconstruction = model.reconstruct_with_keypoints(s, t, source_kp, target_kp, training=False)
            squared[name].append((reconstruction.numpy() - t.numpy()) ** 2)
        squared["copy_source"].append(difference ** 2)
        changed_masks.append(np.abs(difference).max(axis=-1) > change_threshold)
    squared = {name: np.concatenate(parts) for name, parts in squared.items()}  # [N, S, S, 3]
    changed = np.concatenate(changed_masks)  # [N, S, S]

    def on_changed(errors):
        return float(errors[changed].mean()) if changed.any() else 0.0

    mse = {name: float(errors.mean()) for name, errors in squared.items()}
    changed_error = {name: on_changed(errors) for name, errors in squared.items()}
    keypoint_share = 0.0
    if changed_error["no_keypoints"] > 0:
        keypoint_share = 1.0 - changed_error["own"] / changed_error["no_keypoints"]
    target_pixels = ops.keypoints_to_pixels(target_keypoints, size).numpy()  # [N, K, 2] (x, y)
    motion = np.sqrt(target_pixels.var(axis=0).sum(axis=-1))
    layout_pixels = ops.keypoints_to_pixels(layout[None], size).numpy()[0]
    return TransportDiagnosis(
        pairs=len(source),
        mse_own=mse["own"],
        mse_no_keypoints=mse["no_keypoints"],
        mse_fixed_layout=mse["fixed_layout"],
        mse_copy_source=mse["copy_source"],
        mse_own_changed=changed_error["own"],
        mse_no_keypoints_changed=changed_error["no_keypoints"],
        mse_fixed_layout_changed=changed_error["fixed_layout"],
        changed_pixel_share=float(changed.mean()),
        loss_ratio_fixed=_ratio(mse["own"], mse["fixed_layout"]),
        loss_ratio_fixed_changed=_ratio(changed_error["own"], changed_error["fixed_layout"]),
        keypoint_share_of_changed_error=keypoint_share,
        heatmap_spread_px=[float(v) for v in np.concatenate(spreads).mean(axis=0)],
        keypoint_motion_px=[float(v) for v in motion],
        fixed_layout_px=[[float(x), float(y)] for x, y in layout_pixels],
        change_map=changed.mean(axis=0),
    )


def window_pair_indices(episode_ids: np.ndarray, window_length: int, source_range: tuple[int, int],
                        target_range: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Every (source, target) pair Transporter's "window" sampling can draw, as frame indices.

    Frames are in generation order (episode after episode, steps ascending); each episode is cut
    into consecutive windows of ``window_length`` frames (a last partial window is dropped) and
    every source index in ``[source_range)`` is paired with every target index in
    ``[target_range)`` of the same window (``permakey_tf.data.pipelines.PairConfig``).

    Returns:
      ``(source [P], target [P])`` int indices into the frames.
    """
    sources, targets = [], []
    offsets_s = np.arange(*source_range)
    offsets_t = np.arange(*target_range)
    grid_s, grid_t = np.meshgrid(offsets_s, offsets_t, indexing="ij")
    episode_ids = np.asarray(episode_ids)
    starts = np.flatnonzero(np.r_[True, episode_ids[1:] != episode_ids[:-1]])
    ends = np.r_[starts[1:], len(episode_ids)]
    for start, end in zip(starts, ends):
        for window in range(start, end - window_length + 1, window_length):
            sources.append(window + grid_s.ravel())
            targets.append(window + grid_t.ravel())
    if not sources:
        return np.zeros(0, int), np.zeros(0, int)
    return np.concatenate(sources), np.concatenate(targets)


def pair_motion(positions: dict, sources: np.ndarray, targets: np.ndarray,
                moved_px: float = 2.0) -> dict:
    """How far each object class moves between the frames of the given pairs.

    Args:
      positions: ``{"<class>_x": [N], "<class>_y": [N]}`` pixels, NaN where absent
        (``permakey_tf.scoring.metrics.class_positions``).
      sources, targets: ``[P]`` frame indices of the pairs.
      moved_px: a class "moved" in a pair when its position changed by more than this.

    Returns:
      ``{class: {"pairs": pairs with the class in both frames, "moved_share": share of those
      where it moved, "median_px": median displacement}}``.
    """
    result = {}
    for name in sorted({key[:-2] for key in positions}):
        x, y = positions[f"{name}_x"], positions[f"{name}_y"]
        shift = np.hypot(x[targets] - x[sources], y[targets] - y[sources])
        shift = shift[np.isfinite(shift)]
        result[name] = {"pairs": int(shift.size),
                        "moved_share": float((shift > moved_px).mean()) if shift.size else float("nan"),
                        "median_px": float(np.median(shift)) if shift.size else float("nan")}
    return result


OUTSIDE_OBJECTS = "outside objects"


def class_regions(source_objects, target_objects, image_size: int, margin_px: int = 1) -> dict:
    """Per object class, the pixels its boxes cover in the source or the target frame of each pair.

    Args:
      source_objects, target_objects: ``permakey_tf.scoring.matching.ObjectSet`` of the N source
        and the N target frames (pair i = frame i of each), with class names.
      image_size: S, the side of the frames the boxes ([0, 1] coordinates) are drawn on.
      margin_px: each box grown by this many pixels on every side.

    Returns:
      ``{class name: bool [N, S, S]}`` for every class present in some pair, and
      ``OUTSIDE_OBJECTS``: the pixels in no box of any class.
    """
    if source_objects.num_frames != target_objects.num_frames:
        raise ValueError(f"source and target objects must cover the same pairs, got "
                         f"{source_objects.num_frames} and {target_objects.num_frames} frames")
    names = source_objects.class_names or target_objects.class_names
    if names is None:
        raise ValueError("class_regions needs the dataset's class names in the ObjectSets")
    n, size = source_objects.num_frames, image_size
    regions: dict = {}
    for objects in (source_objects, target_objects):
        boxes = objects.boxes * size
        top = np.clip(np.floor(boxes[..., 0]) - margin_px, 0, size).astype(int)
        left = np.clip(np.floor(boxes[..., 1]) - margin_px, 0, size).astype(int)
        bottom = np.clip(np.ceil(boxes[..., 2]) + margin_px, 0, size).astype(int)
        right = np.clip(np.ceil(boxes[..., 3]) + margin_px, 0, size).astype(int)
        for i, m in zip(*np.nonzero(objects.valid)):
            mask = regions.setdefault(names[objects.labels[i, m]], np.zeros((n, size, size), bool))
            mask[i, top[i, m]:bottom[i, m], left[i, m]:right[i, m]] = True
    covered = np.zeros((n, size, size), bool)
    for mask in regions.values():
        covered |= mask
    regions[OUTSIDE_OBJECTS] = ~covered
    return regions


def region_error_shares(error_map: np.ndarray, regions: dict) -> dict:
    """Which share of a per-pixel error falls in each region.

    Args:
      error_map: ``[N, S, S]`` non-negative per-pixel error (e.g. squared error summed over colour).
      regions: ``{name: bool [N, S, S]}`` (:func:`class_regions`).

    Returns:
      ``{name: {"error_share": the region's error / all error, "area_share": its pixels / all
      pixels}}``; an error share well above the area share = the error concentrates there.
    """
    error_map = np.asarray(error_map, np.float64)
    total = float(error_map.sum())
    return {name: {"error_share": float(error_map[mask].sum()) / total if total > 0 else 0.0,
                   "area_share": float(mask.mean())}
            for name, mask in regions.items()}


def reconstruction_error_maps(model, source: np.ndarray, target: np.ndarray,
                              batch_size: int = 32) -> dict:
    """Per-pixel squared errors (summed over colour) of three reconstructions of each target.

    Args:
      model: a built Transporter; source, target: uint8 ``[N, S, S, 3]`` pairs.

    Returns:
      ``{"copy_source", "no_keypoints", "own": float [N, S, S]}``: the source itself as the
      reconstruction (what changes), the decoder with no keypoint, and with the model's own.
    """
    from permakey_tf.models import ops

    size = model.config.image_size
    maps = {"copy_source": [], "no_keypoints": [], "own": []}
    for part in _batches(len(source), batch_size):
        s = ops.scale_frames(source[part], size, "reconstruction_error_maps")
        t = ops.scale_frames(target[part], size, "reconstruction_error_maps")
        reconstructions = {
            "copy_source": s.numpy(),
            "no_keypoints": model.reconstruct_with_keypoints(s, t, None, None, training=False).numpy(),
            "own": model.transport_images(s, t, training=False)["reconstruction"].numpy(),
        }
        for name, image in reconstructions.items():
            maps[name].append(((image - t.numpy()) ** 2).sum(axis=-1))
    return {name: np.concatenate(parts) for name, parts in maps.items()}
