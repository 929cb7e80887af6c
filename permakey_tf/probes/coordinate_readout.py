"""How precisely one keypoint coordinate holds a RAM position variable (pure numpy).

The AtariARI probes score a position by the F1 of its exact byte value. On Space Invaders one byte
step of the player's x is about half a pixel of an 84x84 frame, so a keypoint that sits on the
player in every frame still scores low when its coordinate is off by a fraction of a pixel. This
module separates the two questions the probe F1 mixes: does a keypoint follow the variable at all
(correlation, share of frames on it), and how precisely (error in byte units once its coordinate is
calibrated). The readout:
  1. takes the keypoint coordinate (x or y of one keypoint) most correlated with the variable on
     the fitting frames;
  2. fits the variable linearly from it and keeps the fitting frames within ``outlier_units`` of
     that line (frames where the keypoint is elsewhere, e.g. the player is dead, drop out; the
     line goes through the median coordinate of each value, so those frames do not tilt it);
  3. fits a polynomial of ``degree`` in the coordinate on those frames (soft-argmax keypoints are
     pulled towards the frame's centre, a smooth monotone distortion that a line cannot undo);
  4. predicts the scored frames' values, rounds each to the nearest value seen while fitting, and
     scores the errors and the weighted F1 the probes use.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from permakey_tf.scoring.probe import Standardiser
from permakey_tf.probes.state_probe import weighted_f1

ERROR_QUANTILES: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9)
WITHIN_UNITS: tuple[int, ...] = (0, 1, 2)


@dataclasses.dataclass(frozen=True)
class CoordinateReadout:
    """The best single-coordinate readout of a variable (module docstring), errors in byte units.

    Attributes:
      keypoint, axis: the coordinate read ("x" or "y" of keypoint ``keypoint``).
      correlation: its Pearson correlation with the variable on the fitting frames.
      tracked_share: share of the scored frames within ``outlier_units`` of the calibrated value.
      abs_error_quantiles: {"q25": ..., "q50": ..., ...} of |calibrated - true| over all scored frames.
      within: {"0": share, "1": ..., "2": ...} of scored frames whose rounded value is at most that
        many byte steps off ("0": the exact value).
      f1: weighted F1 of the nearest seen value (what a perfect probe of this one coordinate gets).
    """

    keypoint: int
    axis: str
    correlation: float
    tracked_share: float
    abs_error_quantiles: dict
    within: dict
    f1: float


def best_coordinate_readout(keypoints_fit: np.ndarray, values_fit: np.ndarray,
                            keypoints_scored: np.ndarray, values_scored: np.ndarray,
                            degree: int = 5, outlier_units: float = 15.0) -> CoordinateReadout:
    """Calibrate the keypoint coordinate that best follows a variable and score it.

    Args:
      keypoints_fit: ``[N, K, 2]`` (x, y) pixels of the fitting frames; values_fit: ``[N]``.
      keypoints_scored: ``[M, K, 2]``; values_scored: ``[M]`` (the variable's byte values).
      degree: the calibration polynomial's degree.
      outlier_units: fitting frames further than this from the linear fit are left out of the
        calibration; scored frames further than this from the calibrated value count as untracked.

    Raises:
      ValueError: for mismatched shapes, or when no coordinate varies or the variable is constant.
    """
    fit = np.asarray(keypoints_fit, np.float64)
    scored = np.asarray(keypoints_scored, np.float64)
    y_fit = np.asarray(values_fit, np.float64).reshape(-1)
    y_scored = np.asarray(values_scored, np.float64).reshape(-1)
    if fit.ndim != 3 or fit.shape[-1] != 2 or scored.shape[1:] != fit.shape[1:]:
        raise ValueError(f"keypoints must be [N, K, 2] with the same K, got {fit.shape} and {scored.shape}")
    if len(fit) != len(y_fit) or len(scored) != len(y_scored):
        raise ValueError(f"{len(fit)} / {len(scored)} keypoint frames but {len(y_fit)} / {len(y_scored)} values")
    columns_fit = fit.reshape(len(fit), -1)  # [N, 2K]: x0, y0, x1, y1, ...
    columns_scored = scored.reshape(len(scored), -1)
    spread = columns_fit.std(0)
    if y_fit.std() == 0 or not np.any(spread > 0):
        raise ValueError("the variable or every keypoint coordinate is constant on the fitting frames")
    centred = Standardiser(columns_fit)(columns_fit)  # constant coordinates become 0
    correlations = centred.T @ ((y_fit - y_fit.mean()) / y_fit.std()) / len(y_fit)
    best = int(np.argmax(np.abs(correlations)))
    coordinate_fit, coordinate_scored = columns_fit[:, best], columns_scored[:, best]

    # Frames off the object would tilt a plain line: start from the median coordinate per value.
    seen = np.unique(y_fit)
    medians = np.array([np.median(coordinate_fit[y_fit == value]) for value in seen])
    if not np.ptp(medians) > 0:
        raise ValueError("the best keypoint coordinate does not follow the variable on most frames")
    line = np.polynomial.Polynomial.fit(medians, seen, 1)
    inliers = np.abs(y_fit - line(coordinate_fit)) < outlier_units
    if inliers.sum() > degree + 1 and np.ptp(coordinate_fit[inliers]) > 0:
        calibration = np.polynomial.Polynomial.fit(coordinate_fit[inliers], y_fit[inliers], degree)
    else:
        calibration = line
    predicted = np.clip(calibration(coordinate_scored), seen[0], seen[-1])
    errors = np.abs(predicted - y_scored)
    nearest = seen[np.abs(predicted[:, None] - seen[None]).argmin(1)]
    return CoordinateReadout(
        keypoint=best // 2, axis="xy"[best % 2], correlation=float(correlations[best]),
        tracked_share=float(np.mean(errors < outlier_units)),
        abs_error_quantiles={f"q{round(q * 100)}": float(np.quantile(errors, q)) for q in ERROR_QUANTILES},
        within={str(units): float(np.mean(np.abs(nearest - y_scored) <= units + 1e-9))
                for units in WITHIN_UNITS},
        f1=weighted_f1(y_scored, nearest))
