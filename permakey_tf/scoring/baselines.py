"""The baselines keypoints are compared with, all ``[N, K, 2]`` (x, y) pixels (pure numpy): the
model's own fixed layout, random points, a regular grid and frame-difference blobs."""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np

from permakey_tf.scoring.matching import _check_keypoints

BASELINE_NAMES: tuple[str, ...] = ("fixed_layout", "random", "grid", "frame_difference")


def random_keypoints(num_frames: int, num_keypoints: int, seed: int = 0, image_size: int = 84) -> np.ndarray:
    """K points drawn uniformly over the frame, independently per frame; same seed, same points."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, image_size, size=(num_frames, num_keypoints, 2))


def grid_layout(num_keypoints: int, image_size: int = 84) -> np.ndarray:
    """``[K, 2]``: the first K cell centres (row-major) of a ceil(sqrt K)-column grid over the frame."""
    cols = math.ceil(math.sqrt(num_keypoints))
    rows = math.ceil(num_keypoints / cols)
    ys, xs = np.meshgrid((np.arange(rows) + 0.5) * image_size / rows,
                         (np.arange(cols) + 0.5) * image_size / cols, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], -1)[:num_keypoints]


def grid_keypoints(num_frames: int, num_keypoints: int, image_size: int = 84) -> np.ndarray:
    """The same regular grid layout (:func:`grid_layout`) on every frame."""
    return np.broadcast_to(grid_layout(num_keypoints, image_size), (num_frames, num_keypoints, 2)).copy()


def fixed_layout_keypoints(keypoints: np.ndarray) -> np.ndarray:
    """The model's own average layout: each keypoint's mean position, placed on every frame.

    A model that does not beat this has not learned per-frame keypoints (docs/BACKGROUND.md section 8).
    """
    keypoints = _check_keypoints(keypoints)
    return np.broadcast_to(keypoints.mean(0, keepdims=True), keypoints.shape).copy()


@dataclasses.dataclass(frozen=True)
class FrameDifferenceSettings:
    """The frame-difference blob baseline.

    Attributes:
      threshold: a pixel moves when its smoothed max-over-channels absolute difference (uint8
        units) exceeds this.
      smoothing_sigma: Gaussian smoothing of the difference image, pixels (0 = none).
    """

    threshold: float = 10.0
    smoothing_sigma: float = 1.0


def frame_difference_keypoints(
    frames: np.ndarray,
    episode_ids: np.ndarray,
    steps: np.ndarray,
    num_keypoints: int,
    settings: FrameDifferenceSettings = FrameDifferenceSettings(),
) -> np.ndarray:
    """Keypoints at the largest blobs of the difference with the neighbouring frame.

    For frame t the difference is ``max_c |frame_t - frame_{t-1}|`` (the next frame t+1 when t
    is the first of its episode in the set), smoothed, thresholded, and split into 8-connected
    components. The K components with the largest summed difference give their
    difference-weighted centroids; when fewer than K blobs exist their centroids are repeated
    (so precision reflects the blobs' quality); a frame without any blob (or without a
    neighbour) reuses the previous frame's keypoints of its episode, else the grid layout.

    Args:
      frames: ``[N, H, W, C]`` uint8 (what the model sees, noise included).
      episode_ids, steps: ``[N]``, any order.
      num_keypoints: K.
      settings: threshold and smoothing.

    Returns:
      ``[N, K, 2]`` ``(x, y)`` pixels.
    """
    from scipy import ndimage  # local: only this baseline needs scipy

    frames = np.asarray(frames)
    if frames.ndim != 4:
        raise ValueError(f"frames must be [N, H, W, C], got shape {frames.shape}")
    n, height, width = frames.shape[:3]
    if height != width:
        raise ValueError(f"frames must be square, got {height}x{width}")
    episode_ids = np.asarray(episode_ids).reshape(-1)
    steps = np.asarray(steps).reshape(-1)
    if len(episode_ids) != n or len(steps) != n:
        raise ValueError(f"episode_ids and steps need one entry per frame ({n})")
    position = {(int(e), int(s)): i for i, (e, s) in enumerate(zip(episode_ids, steps))}
    fallback = grid_layout(num_keypoints, height)
    result = np.zeros([n, num_keypoints, 2])
    structure = np.ones([3, 3], bool)
    for i in np.lexsort((steps, episode_ids)):  # episode by episode, in step order
        e, s = int(episode_ids[i]), int(steps[i])
        j = position.get((e, s - 1), position.get((e, s + 1)))
        centroids = np.zeros([0, 2])
        if j is not None:
            diff = np.abs(frames[i].astype(np.float32) - frames[j].astype(np.float32)).max(-1)
            if settings.smoothing_sigma > 0:
                diff = ndimage.gaussian_filter(diff, settings.smoothing_sigma)
            labelled, count = ndimage.label(diff > settings.threshold, structure=structure)
            if count:
                index = np.arange(1, count + 1)
                mass = ndimage.sum(diff, labelled, index)
                centre = np.asarray(ndimage.center_of_mass(diff, labelled, index))  # (row, col)
                order = np.argsort(-mass, kind="stable")[:num_keypoints]
                centroids = centre[order][:, ::-1] + 0.5  # pixel centres, (x, y)
        if len(centroids):
            result[i] = centroids[np.arange(num_keypoints) % len(centroids)]
        else:
            prev = position.get((e, s - 1))
            result[i] = result[prev] if prev is not None else fallback
    return result


def baseline_keypoints(
    model_keypoints: np.ndarray,
    frames: Optional[np.ndarray] = None,
    episode_ids: Optional[np.ndarray] = None,
    steps: Optional[np.ndarray] = None,
    seed: int = 0,
    image_size: int = 84,
    frame_difference: FrameDifferenceSettings = FrameDifferenceSettings(),
) -> dict[str, np.ndarray]:
    """The four baselines with the model's K: ``fixed_layout``, ``random``, ``grid`` and (when
    frames, episode ids and steps are given) ``frame_difference``."""
    model_keypoints = _check_keypoints(model_keypoints)
    n, k = model_keypoints.shape[:2]
    baselines = {
        "fixed_layout": fixed_layout_keypoints(model_keypoints),
        "random": random_keypoints(n, k, seed, image_size),
        "grid": grid_keypoints(n, k, image_size),
    }
    if frames is not None and episode_ids is not None and steps is not None:
        baselines["frame_difference"] = frame_difference_keypoints(
            frames, episode_ids, steps, k, frame_difference
        )
    return baselines
