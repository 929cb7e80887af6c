"""Keypoint <-> object metrics and the baselines they are compared with (pure numpy).

The paper shows keypoints only in pictures; the dataset knows where every object is, so this module
turns "do the keypoints sit on objects?" into numbers (docs/BACKGROUND.md section 8).

Conventions (docs/ARCHITECTURE.md):
  * Keypoints are ``[N, K, 2]`` arrays of ``(x, y)`` continuous pixel coordinates in the
    ``image_size x image_size`` frame (84), x right, y down; pixel ``(row i, column j)`` spans
    ``[j, j+1) x [i, i+1)``.
  * Objects are the dataset's boxes ``(ymin, xmin, ymax, xmax)`` normalised to ``[0, 1]`` (the TFDS
    BBox convention). The original frame is 160 wide x 210 tall, but normalised boxes already
    account for the anisotropic resize: multiplying by 84 gives pixel coordinates.

A keypoint *hits* an object when it lies within ``hit_radius`` pixels of the object's box centre, or
inside its box dilated by ``box_dilation`` pixels on every side (bounds inclusive).

Objects fall in three groups:
  * targets: objects the keypoints should find (not HUD, not static, class filters applied);
    recall, class-macro recall, (dynamic) precision and F1 use these.
  * HUD / score objects: never targets; the share of keypoints spent on them is reported.
  * everything recorded (targets, HUD, static): ``precision_any`` counts a keypoint on any of them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Optional, Sequence

import numpy as np

from permakey_tf import probe

# Static / background classes of OCAtari that are excluded from the targets by default
# (docs/BACKGROUND.md section 8). Compared case-insensitively with the dataset's class names.
STATIC_CLASS_NAMES: tuple[str, ...] = (
    "Pill",
    "PowerPill",
    "Shield",
    "House",
    "FloatingBlock",
    "Block",
    "Ladder",
    "Platform",
    "Wall",
    "Rope",
    "Barrier",
    "Conveyer_Belt",
    "Radar",
)

BASELINE_NAMES: tuple[str, ...] = ("fixed_layout", "random", "grid", "frame_difference")


@dataclasses.dataclass(frozen=True)
class MetricSettings:
    """How keypoints are matched with objects.

    Attributes:
      hit_radius: a keypoint within this many pixels of an object's box centre hits it (3 at 84x84).
      box_dilation: a keypoint inside the object's box grown by this many pixels on every side
        hits it (1).
      image_size: side of the (square) frame the keypoints live in (84).
      exclude_classes: class names never counted as targets (default: the static classes of
        docs/BACKGROUND.md section 8). Needs the dataset's class names to take effect.
      include_classes: if given, only these class names are targets (after the exclusions).
      exclude_static: objects flagged ``is_static`` by the dataset are not targets (True).
      border_margin: a keypoint closer than this many pixels to the frame's edge counts as "on the
        border" (docs/BACKGROUND.md section 10: collapsed keypoints gather there).
      track_max_distance: to follow an object from one frame to the next (the dataset has no
        object ids), the nearest object of the same class within this many pixels is taken.
      min_object_motion: tracking error relative to object motion only uses objects that moved at
        least this many pixels between the two frames.
    """

    hit_radius: float = 3.0
    box_dilation: float = 1.0
    image_size: int = 84
    exclude_classes: tuple[str, ...] = STATIC_CLASS_NAMES
    include_classes: Optional[tuple[str, ...]] = None
    exclude_static: bool = True
    border_margin: float = 3.0
    track_max_distance: float = 8.0
    min_object_motion: float = 0.5

    def __post_init__(self):
        for name in ("hit_radius", "box_dilation", "border_margin", "min_object_motion"):
            if getattr(self, name) < 0:
                raise ValueError(f"MetricSettings.{name} must be >= 0, got {getattr(self, name)}")
        if self.image_size < 1:
            raise ValueError(f"MetricSettings.image_size must be >= 1, got {self.image_size}")
        if self.track_max_distance <= 0:
            raise ValueError(
                f"MetricSettings.track_max_distance must be > 0, got {self.track_max_distance}"
            )
        object.__setattr__(self, "exclude_classes", tuple(self.exclude_classes))
        if self.include_classes is not None:
            object.__setattr__(self, "include_classes", tuple(self.include_classes))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, eq=False)
class ObjectSet:
    """The objects of N frames, padded to M objects per frame.

    Attributes:
      boxes: ``[N, M, 4]`` float, ``(ymin, xmin, ymax, xmax)`` in ``[0, 1]``.
      labels: ``[N, M]`` int, class index into ``class_names``.
      valid: ``[N, M]`` bool, False for padding.
      is_hud: ``[N, M]`` bool, score / lives / other HUD elements.
      is_static: ``[N, M]`` bool, background objects (walls, shields, ...).
      class_names: the dataset's class names (label -> name), or None.
    """

    boxes: np.ndarray
    labels: np.ndarray
    valid: np.ndarray
    is_hud: np.ndarray
    is_static: np.ndarray
    class_names: Optional[tuple[str, ...]] = None

    def __post_init__(self):
        boxes = np.asarray(self.boxes, np.float64)
        if boxes.ndim != 3 or boxes.shape[-1] != 4:
            raise ValueError(f"boxes must be [N, M, 4] (ymin, xmin, ymax, xmax), got {boxes.shape}")
        shape = boxes.shape[:2]
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "labels", np.asarray(self.labels, np.int64))
        for name in ("valid", "is_hud", "is_static"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), bool))
        for name in ("labels", "valid", "is_hud", "is_static"):
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} must be [N, M] = {shape}, got {getattr(self, name).shape}")
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))

    @property
    def num_frames(self) -> int:
        return self.boxes.shape[0]

    @classmethod
    def from_frames(
        cls, frames: Sequence[Mapping[str, np.ndarray]], class_names: Optional[Sequence[str]] = None
    ) -> "ObjectSet":
        """Pads per-frame object lists into one ObjectSet.

        Args:
          frames: one mapping per frame with ``bbox`` ``[m, 4]``, ``label`` ``[m]`` and optionally
            ``is_hud`` / ``is_static`` ``[m]`` (False when missing); m may differ between frames
            (the dataset's ``objects`` feature, converted to numpy).
          class_names: label -> name.
        """
        num = len(frames)
        width = max([len(np.asarray(f["label"]).reshape(-1)) for f in frames] + [1])
        boxes = np.zeros([num, width, 4])
        labels = np.zeros([num, width], np.int64)
        valid = np.zeros([num, width], bool)
        is_hud = np.zeros([num, width], bool)
        is_static = np.zeros([num, width], bool)
        for i, frame in enumerate(frames):
            label = np.asarray(frame["label"]).reshape(-1)
            m = len(label)
            if m == 0:
                continue
            boxes[i, :m] = np.asarray(frame["bbox"], np.float64).reshape(m, 4)
            labels[i, :m] = label
            valid[i, :m] = True
            for name, target in (("is_hud", is_hud), ("is_static", is_static)):
                if name in frame:
                    target[i, :m] = np.asarray(frame[name], bool).reshape(-1)
        return cls(boxes, labels, valid, is_hud, is_static,
                   None if class_names is None else tuple(class_names))

    def take(self, indices: np.ndarray) -> "ObjectSet":
        """The frames at ``indices`` (an index array or a slice)."""
        return ObjectSet(self.boxes[indices], self.labels[indices], self.valid[indices],
                         self.is_hud[indices], self.is_static[indices], self.class_names)


# --------------------------------------------------------------------------------------------------
# Matching


def _check_keypoints(keypoints: np.ndarray, num_frames: Optional[int] = None) -> np.ndarray:
    keypoints = np.asarray(keypoints, np.float64)
    if keypoints.ndim != 3 or keypoints.shape[-1] != 2:
        raise ValueError(f"keypoints must be [N, K, 2] (x, y) pixels, got shape {keypoints.shape}")
    if num_frames is not None and keypoints.shape[0] != num_frames:
        raise ValueError(
            f"keypoints cover {keypoints.shape[0]} frames but the objects cover {num_frames}"
        )
    if not np.all(np.isfinite(keypoints)):
        raise ValueError("keypoints contain NaN or inf; check the model's outputs")
    return keypoints


def object_centres(boxes: np.ndarray, image_size: int = 84) -> np.ndarray:
    """``[..., 4]`` normalised boxes -> ``[..., 2]`` box centres ``(x, y)`` in pixels."""
    boxes = np.asarray(boxes, np.float64) * image_size
    return np.stack([(boxes[..., 1] + boxes[..., 3]) / 2, (boxes[..., 0] + boxes[..., 2]) / 2], -1)


def hit_matrix(keypoints: np.ndarray, objects: ObjectSet, settings: MetricSettings) -> np.ndarray:
    """Which keypoint hits which object.

    Args:
      keypoints: ``[N, K, 2]`` ``(x, y)`` pixels.
      objects: N frames of objects.
      settings: radius and dilation.

    Returns:
      ``[N, K, M]`` bool; padding objects are never hit.
    """
    keypoints = _check_keypoints(keypoints, objects.num_frames)
    size = settings.image_size
    x = keypoints[:, :, None, 0]  # [N, K, 1]
    y = keypoints[:, :, None, 1]
    centres = object_centres(objects.boxes, size)[:, None]  # [N, 1, M, 2]
    near = (x - centres[..., 0]) ** 2 + (y - centres[..., 1]) ** 2 <= settings.hit_radius**2
    pix = objects.boxes[:, None] * size  # [N, 1, M, 4]
    d = settings.box_dilation
    inside = (
        (y >= pix[..., 0] - d) & (y <= pix[..., 2] + d) & (x >= pix[..., 1] - d) & (x <= pix[..., 3] + d)
    )
    return (near | inside) & objects.valid[:, None, :]


def target_mask(objects: ObjectSet, settings: MetricSettings) -> np.ndarray:
    """``[N, M]`` bool: the objects keypoints should find (not HUD, not static, class filters)."""
    mask = objects.valid & ~objects.is_hud
    if settings.exclude_static:
        mask &= ~objects.is_static
    if settings.include_classes is not None and objects.class_names is None:
        raise ValueError(
            "MetricSettings.include_classes needs the dataset's class names: pass class_names to "
            "the ObjectSet"
        )
    if objects.class_names is not None:
        names = [n.lower() for n in objects.class_names]
        excluded = {c.lower() for c in settings.exclude_classes}
        allowed = np.array([n not in excluded for n in names] + [False])
        if settings.include_classes is not None:
            included = {c.lower() for c in settings.include_classes}
            unknown = sorted(included - set(names))
            if unknown:
                raise ValueError(
                    f"include_classes {unknown} are not classes of this dataset; "
                    f"its classes are {list(objects.class_names)}"
                )
            allowed &= np.array([n in included for n in names] + [False])
        labels = np.where((objects.labels >= 0) & (objects.labels < len(names)), objects.labels, len(names))
        mask &= allowed[labels]
    return mask


def keypoints_on_mask(keypoints: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Whether each keypoint lies on a True pixel of its frame's mask.

    Args:
      keypoints: ``[N, K, 2]`` ``(x, y)`` pixels; the pixel looked up is ``(floor(y), floor(x))``,
        clipped to the frame.
      masks: ``[N, H, W]`` bool (e.g. the noise bars).

    Returns:
      ``[N, K]`` bool.
    """
    keypoints = _check_keypoints(keypoints)
    masks = np.asarray(masks, bool)
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    if masks.ndim != 3 or masks.shape[0] != keypoints.shape[0]:
        raise ValueError(
            f"masks must be [N, H, W] with N = {keypoints.shape[0]} frames, got {masks.shape}"
        )
    height, width = masks.shape[1:]
    cols = np.clip(np.floor(keypoints[..., 0]).astype(int), 0, width - 1)
    rows = np.clip(np.floor(keypoints[..., 1]).astype(int), 0, height - 1)
    return masks[np.arange(masks.shape[0])[:, None], rows, cols]


def keypoints_on_border(keypoints: np.ndarray, settings: MetricSettings) -> np.ndarray:
    """``[N, K]`` bool: keypoints within ``border_margin`` pixels of the frame's edge."""
    keypoints = _check_keypoints(keypoints)
    m, size = settings.border_margin, settings.image_size
    return np.any((keypoints < m) | (keypoints > size - m), axis=-1)


def _safe_div(num: float, den: float) -> float:
    return float(num) / float(den) if den else math.nan


def _f1(precision: float, recall: float) -> float:
    if math.isnan(precision) or math.isnan(recall):
        return math.nan
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def frame_metrics(
    keypoints: np.ndarray,
    objects: ObjectSet,
    settings: MetricSettings = MetricSettings(),
    bar_masks: Optional[np.ndarray] = None,
) -> dict[str, np.ndarray]:
    """Per-frame metrics.

    Args:
      keypoints: ``[N, K, 2]`` ``(x, y)`` pixels.
      objects: the N frames' objects.
      settings: matching rules.
      bar_masks: optional ``[N, H, W]`` bool noise-bar masks.

    Returns:
      dict of ``[N]`` float arrays: ``recall`` (NaN in frames without targets), ``precision``
      (keypoints on a target / K), ``precision_any`` (on any recorded object), ``f1``,
      ``hud_share``, ``border_share``, ``bar_share`` (only with bar_masks), ``num_targets``.
    """
    hits = hit_matrix(keypoints, objects, settings)
    targets = target_mask(objects, settings)
    k = hits.shape[1]
    num_targets = targets.sum(1)
    found = (hits.any(1) & targets).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(num_targets > 0, found / np.maximum(num_targets, 1), np.nan)
        precision = (hits & targets[:, None]).any(2).sum(1) / k
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    f1 = np.where(np.isnan(recall), np.nan, f1)
    result = {
        "recall": recall,
        "precision": precision,
        "precision_any": hits.any(2).sum(1) / k,
        "f1": f1,
        "hud_share": (hits & (objects.valid & objects.is_hud)[:, None]).any(2).sum(1) / k,
        "border_share": keypoints_on_border(keypoints, settings).sum(1) / k,
        "num_targets": num_targets.astype(np.float64),
    }
    if bar_masks is not None:
        result["bar_share"] = keypoints_on_mask(keypoints, bar_masks).sum(1) / k
    return result


# --------------------------------------------------------------------------------------------------
# Stability over consecutive frames


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


# --------------------------------------------------------------------------------------------------
# Linear probe from keypoints to object positions


def class_positions(objects: ObjectSet, settings: MetricSettings = MetricSettings()) -> dict[str, np.ndarray]:
    """Per target class, the mean box centre of its targets in each frame.

    For a class with one object per frame (a player, a ball) that is the object's position; for a
    group (an alien formation) the group's centroid.

    Returns:
      ``{"<class>_x": [N], "<class>_y": [N]}`` pixels, NaN in frames without that class.
    """
    targets = target_mask(objects, settings)
    centres = object_centres(objects.boxes, settings.image_size)  # [N, M, 2]
    positions = {}
    for label in np.unique(objects.labels[targets]):
        of_class = targets & (objects.labels == label)
        count = of_class.sum(1)
        with np.errstate(invalid="ignore"):
            mean = (centres * of_class[..., None]).sum(1) / count[:, None]
        mean[count == 0] = np.nan
        name = _class_name(objects, label)
        positions[f"{name}_x"], positions[f"{name}_y"] = mean[:, 0], mean[:, 1]
    return positions


def position_probe(
    keypoints: np.ndarray,
    objects: ObjectSet,
    episode_ids: np.ndarray,
    steps: np.ndarray,
    settings: MetricSettings = MetricSettings(),
) -> dict[str, float]:
    """R^2 of a linear probe from the 2K keypoint coordinates of a frame to its objects'
    positions (:func:`class_positions`), fitted on one half of the episodes and scored on the
    other (:mod:`permakey_tf.probe`).

    Returns:
      ``probe_r2`` (mean over the variables that qualified; a fixed layout scores <= 0),
      ``probe_r2/<class>`` (mean of its x and y), ``probe_variables`` (how many qualified).
    """
    keypoints = _check_keypoints(keypoints, objects.num_frames)
    fit_mask = probe.split_by_episode(episode_ids, steps)
    scores = probe.probe_r2(keypoints.reshape(len(keypoints), -1), class_positions(objects, settings),
                            fit_mask)
    result = {"probe_r2": float(np.mean(list(scores.values()))) if scores else math.nan,
              "probe_variables": float(len(scores))}
    for name in sorted({key.rsplit("_", 1)[0] for key in scores}):
        values = [scores[f"{name}_{axis}"] for axis in ("x", "y") if f"{name}_{axis}" in scores]
        result[f"probe_r2/{name}"] = float(np.mean(values))
    return result


def _class_name(objects: ObjectSet, label: int) -> str:
    if objects.class_names is not None and 0 <= label < len(objects.class_names):
        return objects.class_names[label]
    return str(int(label))


# --------------------------------------------------------------------------------------------------
# Whole evaluation set


def evaluate_keypoints(
    keypoints: np.ndarray,
    objects: ObjectSet,
    settings: MetricSettings = MetricSettings(),
    bar_masks: Optional[np.ndarray] = None,
    episode_ids: Optional[np.ndarray] = None,
    steps: Optional[np.ndarray] = None,
) -> dict[str, float]:
    """All metrics of one keypoint set over an evaluation set, as a flat dict of floats.

    Recall and precision are pooled over frames (objects found / objects, keypoints on targets /
    (N K)); F1 combines the pooled values; ``f1_frame_mean`` averages per-frame F1 over frames
    with targets. Class-macro recall averages the pooled recall of each class present; each
    class's recall is also given as ``recall_class/<name>``. Undefined values are NaN (see
    :func:`json_ready`).

    Args:
      keypoints: ``[N, K, 2]`` ``(x, y)`` pixels.
      objects: the N frames' objects.
      settings: matching rules.
      bar_masks: optional ``[N, H, W]`` bool; adds ``bar_share``.
      episode_ids, steps: optional ``[N]``; add the stability metrics of
        :func:`stability_metrics` and the object-position probe of :func:`position_probe`.
    """
    keypoints = _check_keypoints(keypoints, objects.num_frames)
    n, k = keypoints.shape[:2]
    hits = hit_matrix(keypoints, objects, settings)
    targets = target_mask(objects, settings)
    found = hits.any(1) & targets  # [N, M]
    per_frame = frame_metrics(keypoints, objects, settings, bar_masks)
    recall = _safe_div(found.sum(), targets.sum())
    precision = _safe_div((hits & targets[:, None]).any(2).sum(), n * k)
    result = {
        "num_frames": float(n),
        "num_keypoints": float(k),
        "targets_per_frame": _safe_div(targets.sum(), n),
        "recall": recall,
        "precision": precision,
        "f1": _f1(precision, recall),
        "precision_any": _safe_div(hits.any(2).sum(), n * k),
        "hud_share": float(per_frame["hud_share"].mean()) if n else math.nan,
        "border_share": float(per_frame["border_share"].mean()) if n else math.nan,
    }
    with_targets = ~np.isnan(per_frame["f1"])
    result["f1_frame_mean"] = float(per_frame["f1"][with_targets].mean()) if with_targets.any() else math.nan
    class_recalls = []
    for label in np.unique(objects.labels[targets]):
        of_class = targets & (objects.labels == label)
        value = _safe_div((found & of_class).sum(), of_class.sum())
        class_recalls.append(value)
        result[f"recall_class/{_class_name(objects, label)}"] = value
    result["recall_class_macro"] = float(np.mean(class_recalls)) if class_recalls else math.nan
    if bar_masks is not None:
        result["bar_share"] = float(per_frame["bar_share"].mean()) if n else math.nan
    if episode_ids is not None and steps is not None:
        result.update(stability_metrics(keypoints, objects, episode_ids, steps, settings))
        result.update(position_probe(keypoints, objects, episode_ids, steps, settings))
    return result


def json_ready(values):
    """Replaces NaN / inf floats by None, recursively, so that strict JSON parsers accept it."""
    if isinstance(values, Mapping):
        return {str(k): json_ready(v) for k, v in values.items()}
    if isinstance(values, (list, tuple)):
        return [json_ready(v) for v in values]
    if isinstance(values, (float, np.floating)):
        return float(values) if math.isfinite(values) else None
    if isinstance(values, np.integer):
        return int(values)
    return values


# --------------------------------------------------------------------------------------------------
# Baselines (all return [N, K, 2] (x, y) pixels)


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


def evaluate_with_baselines(
    model_keypoints: np.ndarray,
    objects: ObjectSet,
    settings: MetricSettings = MetricSettings(),
    frames: Optional[np.ndarray] = None,
    bar_masks: Optional[np.ndarray] = None,
    episode_ids: Optional[np.ndarray] = None,
    steps: Optional[np.ndarray] = None,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Metrics of the model's keypoints and of every baseline, by the same code.

    Returns:
      ``{"model": {...}, "fixed_layout": {...}, "random": {...}, "grid": {...},
      "frame_difference": {...}}`` (the last only with frames, episode ids and steps), each a
      flat dict from :func:`evaluate_keypoints`.
    """
    sets = {"model": _check_keypoints(model_keypoints, objects.num_frames)}
    sets.update(baseline_keypoints(model_keypoints, frames, episode_ids, steps, seed,
                                   settings.image_size))
    return {
        name: evaluate_keypoints(kps, objects, settings, bar_masks, episode_ids, steps)
        for name, kps in sets.items()
    }
