"""Keypoints over consecutive frames of an episode: jitter and how well they follow their objects
(pure numpy; conventions in permakey_tf.scoring.matching)."""

from __future__ import annotations

import math

import numpy as np

from permakey_tf.scoring.matching import MetricSettings, ObjectSet, _check_keypoints, hit_matrix, object_centres, target_mask


def consecutive_pairs(episode_ids: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(t, t1)`` of frames where t1 is the next step of the same episode.

    Args:
      episode_ids, steps: ``[N]`` ints, in any order.

    Returns:
      two ``[P]`` index arrays.
    """
    episode_ids = np.asarray(episode_ids).reshape(-1)
    steps = np.asarray(steps).reshape(-1)
    if episode_ids.shape != steps.shape:
        raise ValueError(f"episode_ids {episode_ids.shape} and steps {steps.shape} differ in length")
    position = {(int(e), int(s)): i for i, (e, s) in enumerate(zip(episode_ids, steps))}
    first, second = [], []
    for i, (e, s) in enumerate(zip(episode_ids, steps)):
        j = position.get((int(e), int(s) + 1))
        if j is not None:
            first.append(i)
            second.append(j)
    return np.asarray(first, np.int64), np.asarray(second, np.int64)


def stability_metrics(
    keypoints: np.ndarray,
    objects: ObjectSet,
    episode_ids: np.ndarray,
    steps: np.ndarray,
    settings: MetricSettings = MetricSettings(),
) -> dict[str, float]:
    """How keypoints move between consecutive frames of one episode, alone and against objects.

    For a keypoint that hits a target object at step t (the hit object with the nearest centre),
    the object is followed to step t+1 (same class, nearest centre within ``track_max_distance``)
    and the keypoint's displacement is compared with the object's.

    Returns:
      ``jitter_px``: mean keypoint displacement (pixels) over all consecutive pairs;
      ``jitter_on_object_px``: the same for keypoints on a followed object;
      ``object_motion_px``: mean displacement of those objects;
      ``tracking_error_px``: mean ``|d_keypoint - d_object|`` over them;
      ``tracking_error_relative``: ``sum |d_keypoint - d_object| / sum |d_object|`` over the
        keypoints whose object moved at least ``min_object_motion`` px: 1 for a keypoint that
        stands still, 0 for one that follows its object exactly, above 1 for jitter;
      ``num_pairs``, ``num_tracked``: how many frame pairs / keypoint instances went in.
    """
    keypoints = _check_keypoints(keypoints, objects.num_frames)
    first, second = consecutive_pairs(episode_ids, steps)
    nan = math.nan
    out = {
        "jitter_px": nan,
        "jitter_on_object_px": nan,
        "object_motion_px": nan,
        "tracking_error_px": nan,
        "tracking_error_relative": nan,
        "num_pairs": float(len(first)),
        "num_tracked": 0.0,
    }
    if len(first) == 0:
        return out
    moves = keypoints[second] - keypoints[first]  # [P, K, 2]
    out["jitter_px"] = float(np.linalg.norm(moves, axis=-1).mean())

    targets = target_mask(objects, settings)
    hits = hit_matrix(keypoints, objects, settings) & targets[:, None]
    centres = object_centres(objects.boxes, settings.image_size)  # [N, M, 2]
    kp_lens, obj_lens, errors = [], [], []
    for start in range(0, len(first), _PAIR_CHUNK):  # bounded memory: [chunk, M, M] at a time
        i0, i1 = first[start:start + _PAIR_CHUNK], second[start:start + _PAIR_CHUNK]
        kp_len, obj_len, error = _tracked_motion(keypoints[i0], keypoints[i1], centres[i0], centres[i1],
                                                 objects.labels[i0], objects.labels[i1], hits[i0],
                                                 targets[i1], settings.track_max_distance)
        kp_lens.append(kp_len)
        obj_lens.append(obj_len)
        errors.append(error)
    kp_len, obj_len, error = (np.concatenate(a) for a in (kp_lens, obj_lens, errors))
    if len(kp_len) == 0:
        return out
    out["jitter_on_object_px"] = float(kp_len.mean())
    out["object_motion_px"] = float(obj_len.mean())
    out["tracking_error_px"] = float(error.mean())
    moving = obj_len >= max(settings.min_object_motion, 1e-9)
    if moving.any():
        out["tracking_error_relative"] = float(error[moving].sum() / obj_len[moving].sum())
    out["num_tracked"] = float(len(kp_len))
    return out


_PAIR_CHUNK = 512


def _tracked_motion(kp0, kp1, c0, c1, labels0, labels1, hits0, targets1, max_distance):
    """For pairs of frames: displacement lengths of keypoints on a followed object, of the
    objects, and of their difference (1-D arrays over the tracked keypoint instances).

    kp0/kp1 ``[P, K, 2]``, c0/c1 ``[P, M, 2]`` centres, labels ``[P, M]``, hits0 ``[P, K, M]``
    (hits on targets at t), targets1 ``[P, M]``.
    """
    moves = kp1 - kp0
    # Follow each object at t to the nearest same-class target at t+1.
    dist = np.hypot(c0[:, :, None, 0] - c1[:, None, :, 0], c0[:, :, None, 1] - c1[:, None, :, 1])
    same = (labels0[:, :, None] == labels1[:, None]) & targets1[:, None]
    dist = np.where(same, dist, np.inf)  # [P, M, M]
    follower = dist.argmin(-1)  # [P, M]
    followed = np.take_along_axis(dist, follower[..., None], -1)[..., 0] <= max_distance
    object_moves = np.take_along_axis(c1, follower[..., None], 1) - c0  # [P, M, 2]
    # For each keypoint at t, the hit object with the nearest centre.
    kp_dist = np.hypot(kp0[:, :, None, 0] - c0[:, None, :, 0], kp0[:, :, None, 1] - c0[:, None, :, 1])
    kp_dist = np.where(hits0, kp_dist, np.inf)  # [P, K, M]
    chosen = kp_dist.argmin(-1)  # [P, K]
    on_object = np.isfinite(np.take_along_axis(kp_dist, chosen[..., None], -1)[..., 0])
    tracked = on_object & np.take_along_axis(followed, chosen, 1)
    obj_move = np.take_along_axis(object_moves, chosen[..., None], 1)  # [P, K, 2]
    return (np.linalg.norm(moves, axis=-1)[tracked], np.linalg.norm(obj_move, axis=-1)[tracked],
            np.linalg.norm(moves - obj_move, axis=-1)[tracked])
