"""Does a model give per-frame keypoints, or one layout for every frame? (pure numpy)

``permakey_tf.scoring.metrics`` compares keypoints with the dataset's objects. The diagnostics here need no
objects; they ask the model itself:

* :func:`shift_equivariance_gain`: move the frame's content by a few pixels (the uncovered strip
  filled with the frame's background colour) and measure how far the keypoints follow, as a
  fraction of the shift. 1 = they move with the content, 0 = a fixed layout.
* :func:`pointnet_loss_ratio`: PermaKey's own objective (the loss function the model trains,
  passed in) for its keypoints, divided by the same loss for its fixed layout (each keypoint's
  mean position on every frame). Below 1 = the per-frame placement pays on the model's own terms.
* :func:`moving_error_coverage`: the share of the error that is *not* always in the same place
  (each frame's error above the mean error map of all frames) that lies under the keypoints'
  windows, beside the same share for the fixed layout. It weighs what moves (a paddle, a cannon,
  a ball) and ignores what the maps show in every frame (the score, walls, shields), which the
  PointNet loss counts by mass.

Keypoints are ``[N, K, 2]`` ``(x, y)`` continuous pixel coordinates of the ``S x S`` frame
(docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

KeypointFn = Callable[[np.ndarray], np.ndarray]  # uint8 [B, S, S, 3] -> [B, K, 2] (x, y) pixels

# The four shift directions (dx, dy) in units of the shift.
SHIFT_DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1))


def background_colours(frames: np.ndarray) -> np.ndarray:
    """``[N, H, W, 3]`` uint8 -> ``[N, 3]``: each frame's most frequent colour (Atari backgrounds
    are flat, so this is the background)."""
    frames = np.asarray(frames)
    packed = (frames[..., 0].astype(np.int64) << 16) | (frames[..., 1].astype(np.int64) << 8) | frames[..., 2]
    colours = np.zeros((len(frames), 3), np.uint8)
    for i, codes in enumerate(packed.reshape(len(frames), -1)):
        values, counts = np.unique(codes, return_counts=True)
        code = int(values[np.argmax(counts)])
        colours[i] = ((code >> 16) & 255, (code >> 8) & 255, code & 255)
    return colours


def shift_frames(frames: np.ndarray, dx: int, dy: int, fill: float | None = None) -> np.ndarray:
    """Moves every frame's content by ``dx`` pixels right and ``dy`` down (negative: left / up);
    the strip uncovered at the opposite edge gets ``fill``, or (None) each frame's background
    colour (:func:`background_colours`, for uint8 RGB frames).

    ``[N, H, W, C]`` -> ``[N, H, W, C]``, same dtype.
    """
    frames = np.asarray(frames)
    height, width = frames.shape[1:3]
    if abs(dx) >= width or abs(dy) >= height:
        raise ValueError(f"shift ({dx}, {dy}) is not smaller than the frame ({width}x{height})")
    out = np.empty_like(frames)
    out[:] = background_colours(frames)[:, None, None, :] if fill is None else fill
    src_y = slice(max(0, -dy), height - max(0, dy))
    dst_y = slice(max(0, dy), height - max(0, -dy))
    src_x = slice(max(0, -dx), width - max(0, dx))
    dst_x = slice(max(0, dx), width - max(0, -dx))
    out[:, dst_y, dst_x] = frames[:, src_y, src_x]
    return out


def shift_equivariance_gain(
    keypoint_fn: KeypointFn,
    frames: np.ndarray,
    shift: int = 4,
    margin: float = 8.0,
    keypoints: np.ndarray | None = None,
    fill: float | None = None,
) -> dict[str, float]:
    """How far keypoints follow the frame's content when it moves.

    For each direction (right, left, down, up) the frames are shifted by ``shift`` pixels
    (:func:`shift_frames`); a keypoint's gain is its displacement along the shift divided by the
    shift. Only keypoints at least ``margin`` pixels from every edge, before and after, count
    (content moves out of the frame there, and clamped keypoints cannot move).

    Args:
      keypoint_fn: uint8 frames ``[B, S, S, 3]`` -> keypoints ``[B, K, 2]`` (x, y) pixels.
      frames: ``[N, S, S, 3]`` uint8.
      shift: pixels, >= 1.
      margin: pixels from the edge.
      keypoints: the keypoints of the unshifted frames, if already computed.
      fill: what the uncovered strip gets (:func:`shift_frames`; None = the background colour).

    Returns:
      ``shift_gain_x`` (median over horizontal shifts), ``shift_gain_y`` (vertical), ``shift_gain``
      (their mean; 1 = keypoints move with the content, 0 = a fixed layout) and
      ``shift_gain_count`` (keypoint instances that counted). NaN where none counted.
    """
    if shift < 1:
        raise ValueError(f"shift must be >= 1 pixel, got {shift}")
    frames = np.asarray(frames)
    size = frames.shape[1]
    base = np.asarray(keypoint_fn(frames) if keypoints is None else keypoints, np.float64)
    if base.shape[:1] != frames.shape[:1] or base.ndim != 3 or base.shape[-1] != 2:
        raise ValueError(f"keypoints must be [N, K, 2] for N = {len(frames)} frames, got {base.shape}")

    def inside(points):
        return np.all((points >= margin) & (points <= size - margin), axis=-1)

    gains = {"x": [], "y": []}
    for dx, dy in SHIFT_DIRECTIONS:
        moved = np.asarray(keypoint_fn(shift_frames(frames, dx * shift, dy * shift, fill)), np.float64)
        direction = np.array([dx, dy], np.float64)
        along = (moved - base) @ direction / shift  # [N, K]
        keep = inside(base) & inside(moved)
        gains["x" if dx else "y"].append(along[keep])
    result = {}
    for axis, parts in gains.items():
        values = np.concatenate(parts)
        result[f"shift_gain_{axis}"] = float(np.median(values)) if len(values) else math.nan
    result["shift_gain"] = float(np.mean([result["shift_gain_x"], result["shift_gain_y"]]))
    result["shift_gain_count"] = float(sum(len(p) for parts in gains.values() for p in parts))
    return result


def pointnet_loss_ratio(keypoints: np.ndarray, error_maps: np.ndarray,
                        frame_losses: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> dict[str, float]:
    """The PointNet loss of the keypoints and of their fixed layout on the same error maps.

    Args:
      keypoints: ``[N, K, 2]`` (x, y) pixels.
      error_maps: ``[N, S, S, L]``.
      frame_losses: (keypoints, error maps) -> ``[N]`` per-frame losses; the model's own
        (``pointnet.pointnet_frame_losses_of_pixels`` with its config), so the ratio is measured
        on exactly the objective it trains.

    Returns:
      ``pointnet_loss``, ``fixed_layout_pointnet_loss`` (each keypoint at its mean position on
      every frame) and ``pointnet_loss_ratio`` (the first over the second: 1 = no better than one
      layout for all frames).
    """
    keypoints = np.asarray(keypoints, np.float64)
    fixed = np.broadcast_to(keypoints.mean(0, keepdims=True), keypoints.shape)
    own = float(np.mean(frame_losses(keypoints, error_maps)))
    static = float(np.mean(frame_losses(fixed, error_maps)))
    return {
        "pointnet_loss": own,
        "fixed_layout_pointnet_loss": static,
        "pointnet_loss_ratio": own / static if static > 0 else math.nan,
    }


def keypoint_gain_maps(error_maps: np.ndarray, sigma: float) -> np.ndarray:
    """How much one keypoint centred on each pixel would lower the PointNet loss by itself.

    The loss compares the summed Gaussian windows ``g`` with the error maps ``E``; adding a window
    ``g_p`` at pixel p where no other window is changes the summed squared error of a layer by
    ``<g_p, g_p> - 2 <g_p, E>``. The gain ``2 <g_p, E> - <g_p, g_p>`` (mean over layers) is
    therefore positive exactly where a keypoint pays on the model's own terms: a blob of error
    mass smaller than about half a window's ``<g, g>`` (``pi sigma_px^2 / 4`` for a blob at 1) is
    never worth a keypoint, whatever the PointNet learns. The window's whole mass counts (the
    default ``pointnet_loss_extent="padded"``); E is 0 beyond the frame.

    Args:
      error_maps: ``[N, S, S, L]``.
      sigma: the model's keypoint_sigma (``[-1, 1]`` units).

    Returns:
      ``[N, S, S]`` float64, in summed-squared-error units of one frame's layer.
    """
    maps = np.asarray(error_maps, np.float64)
    size = maps.shape[1]
    sigma_px = sigma * (size - 1) / 2.0
    reach = int(math.ceil(4.0 * sigma_px))
    offsets = np.arange(-reach, reach + 1)
    profile = np.exp(-(offsets**2) / sigma_px**2)
    self_overlap = float(np.sum(profile**2)) ** 2  # <g, g> of the untruncated window
    padded = np.pad(maps, ((0, 0), (reach, reach), (reach, reach), (0, 0)))
    rows = sum(w * padded[:, reach + o:reach + o + size] for o, w in zip(offsets, profile))
    overlap = sum(w * rows[:, :, reach + o:reach + o + size] for o, w in zip(offsets, profile))
    return 2.0 * overlap.mean(-1) - self_overlap


def moving_error_coverage(keypoints: np.ndarray, error_maps: np.ndarray, sigma: float,
                          chunk: int = 32) -> dict[str, float]:
    """How much of the error that moves lies under the keypoints (no labels).

    Per frame t the error maps are averaged over layers (``E_t``, ``[S, S]``); the *moving error*
    is ``R_t = max(E_t - mean_t' E_t', 0)``: what frame t shows beyond what the maps show on
    average over the frames given. Each keypoint covers the pixels under its Gaussian window
    ``exp(-d^2 / sigma_px^2)`` (the PointNet's windows, ``sigma_px = sigma (S - 1) / 2``); a pixel's
    cover is its largest window value. The coverage is ``sum_t,p R_t(p) cover_t(p) / sum_t,p
    R_t(p)``, pooled over frames. A layout that sits where things usually are covers little of
    ``R`` (what is there on average is subtracted); keypoints that follow the objects that move
    cover it frame by frame, however faint the object is next to the HUD.

    Args:
      keypoints: ``[N, K, 2]`` (x, y) continuous pixels of the ``S x S`` maps (pixel i spans
        [i, i + 1)).
      error_maps: ``[N, S, S, L]``.
      sigma: the model's keypoint_sigma (``[-1, 1]`` units).
      chunk: frames per step (memory ``chunk * K * S * S`` floats).

    Returns:
      ``moving_error_coverage`` (in [0, 1]), ``fixed_layout_moving_error_coverage`` (the same
      for each keypoint at its mean position on every frame) and ``moving_error_coverage_gain``
      (the first minus the second); NaN if no frame shows error beyond the mean.
    """
    keypoints = np.asarray(keypoints, np.float64)
    maps = np.asarray(error_maps, np.float64).mean(-1)
    if keypoints.ndim != 3 or keypoints.shape[-1] != 2 or len(keypoints) != len(maps):
        raise ValueError(f"keypoints {keypoints.shape} do not match error maps {np.shape(error_maps)}: "
                         "pass [N, K, 2] pixel keypoints of the same N frames")
    moving = np.maximum(maps - maps.mean(0, keepdims=True), 0.0)
    total = float(moving.sum())
    fixed = np.broadcast_to(keypoints.mean(0, keepdims=True), keypoints.shape)
    size = maps.shape[1]
    sigma_px = sigma * (size - 1) / 2.0
    centres = np.arange(size) + 0.5

    def covered(points: np.ndarray) -> float:
        mass = 0.0
        for start in range(0, len(points), chunk):
            p = points[start:start + chunk]
            across = np.exp(-((centres[None, None, :] - p[..., 0:1]) ** 2) / sigma_px**2)  # [n, K, S] x
            down = np.exp(-((centres[None, None, :] - p[..., 1:2]) ** 2) / sigma_px**2)  # [n, K, S] y
            cover = (down[..., :, None] * across[..., None, :]).max(1)  # [n, S, S]
            mass += float(np.sum(cover * moving[start:start + chunk]))
        return mass / total if total > 0 else math.nan

    own, static = covered(keypoints), covered(fixed)
    return {"moving_error_coverage": own, "fixed_layout_moving_error_coverage": static,
            "moving_error_coverage_gain": own - static}
