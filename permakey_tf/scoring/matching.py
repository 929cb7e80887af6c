"""Keypoint <-> object matching: the settings, the objects of N frames, and per-frame metrics
(pure numpy; docs/BACKGROUND.md section 8).

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

    def class_name(self, label: int) -> str:
        """The name of class ``label`` (its number as text when the names are unknown)."""
        if self.class_names is not None and 0 <= label < len(self.class_names):
            return self.class_names[label]
        return str(int(label))

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
