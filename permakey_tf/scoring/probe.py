"""Linear probes: how much of a variable a representation holds linearly (pure numpy).

A probe is a ridge regression from a representation (e.g. the 2K keypoint coordinates of a frame)
to a variable (e.g. the ball's x position), fitted on one part of the frames and scored by R^2 on
the other. The parts are split by episode, so a probe cannot score by remembering neighbouring
frames of the same episode. Small evaluation sets often hold one or two long episodes (the quick
preset's 512 Pong test frames are one episode); then whole blocks of consecutive steps alternate
between the parts instead (:func:`split_by_episode`), so that both parts see the whole range of
the game while only frames at block edges have a neighbour in the other part.

R^2 is ``1 - sum (y - y_hat)^2 / sum (y - mean y)^2`` on the scored part; predictions are clipped
to the range of the fitted part's values (positions are bounded; without it, one feature that
barely varied while fitting can send held-out predictions far off the screen). A representation
that is the same on every frame (a fixed keypoint layout) predicts the fitted part's mean and
scores <= 0.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

RIDGE_ALPHAS: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


MIN_EPISODES = 4


def split_by_episode(episode_ids: np.ndarray, steps: np.ndarray, block: int = 64) -> np.ndarray:
    """``[N]`` bool: True for the frames the probe is fitted on, False for those it is scored on.

    With at least ``MIN_EPISODES`` episodes: whole episodes, alternating in increasing id (so both
    parts hold about half). With fewer: inside every episode, blocks of ``block`` consecutive
    steps alternate between the parts.
    """
    episode_ids = np.asarray(episode_ids).reshape(-1)
    steps = np.asarray(steps).reshape(-1)
    if episode_ids.shape != steps.shape:
        raise ValueError(f"episode_ids {episode_ids.shape} and steps {steps.shape} differ in length")
    episodes = np.unique(episode_ids)
    if len(episodes) >= MIN_EPISODES:
        return np.isin(episode_ids, episodes[::2])
    fit = np.zeros(len(steps), bool)
    for episode in episodes:
        mine = episode_ids == episode
        fit[mine] = ((steps[mine] - steps[mine].min()) // block) % 2 == 0
    return fit


class Standardiser:
    """Feature standardisation with the fitting part's mean and standard deviation; features
    whose deviation is at most ``min_std`` are constant and become 0."""

    def __init__(self, fit: np.ndarray, min_std: float = 1e-9):
        self.mean = fit.mean(0)
        std = fit.std(0)
        self.std = np.where(std > min_std, std, np.inf)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) / self.std


def _standardise(fit: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    standardise = Standardiser(fit)
    return standardise(fit), standardise(other)


def ridge_predict(x_fit: np.ndarray, y_fit: np.ndarray, x_eval: np.ndarray,
                  alphas: Sequence[float] = RIDGE_ALPHAS) -> np.ndarray:
    """Ridge regression with an intercept, its penalty chosen by leave-one-out error.

    Args:
      x_fit: ``[n, F]``; y_fit: ``[n]``; x_eval: ``[m, F]``. Features are standardised on the
        fitting part (constant features drop out).
      alphas: candidate penalties; the one with the lowest closed-form leave-one-out error on the
        fitting part is used.

    Returns:
      ``[m]`` predictions, clipped to ``[min y_fit, max y_fit]``.
    """
    x_fit, x_eval = _standardise(np.asarray(x_fit, np.float64), np.asarray(x_eval, np.float64))
    y_fit = np.asarray(y_fit, np.float64)
    y_mean = y_fit.mean()
    y_centred = y_fit - y_mean
    # Through the SVD: hat matrix diagonal and weights for every alpha at once.
    u, s, vt = np.linalg.svd(x_fit, full_matrices=False)
    uty = u.T @ y_centred
    best, best_error = None, math.inf
    for alpha in alphas:
        shrink = s**2 / (s**2 + alpha)
        fitted = u @ (shrink * uty)
        leverage = (u**2) @ shrink + 1.0 / len(y_fit)  # + the intercept's share
        loo = (y_centred - fitted) / np.maximum(1.0 - leverage, 1e-9)
        error = float(np.mean(loo**2))
        if error < best_error:
            best, best_error = alpha, error
    weights = vt.T @ (s / (s**2 + best) * uty)
    return np.clip(x_eval @ weights + y_mean, y_fit.min(), y_fit.max())


def r2_score(y: np.ndarray, prediction: np.ndarray) -> float:
    """``1 - SS_res / SS_tot`` (NaN for a constant y)."""
    y = np.asarray(y, np.float64)
    total = float(np.sum((y - y.mean()) ** 2))
    if total <= 0:
        return math.nan
    return 1.0 - float(np.sum((y - np.asarray(prediction, np.float64)) ** 2)) / total


def probe_r2(features: np.ndarray, variables: Mapping[str, np.ndarray], fit_mask: np.ndarray,
             min_frames: int = 20, min_std: float = 3.0) -> dict[str, float]:
    """Held-out R^2 of a linear probe from ``features`` to each variable.

    Args:
      features: ``[N, F]`` (e.g. flattened keypoints).
      variables: name -> ``[N]`` values, NaN where the variable is undefined (an absent object);
        those frames are left out for that variable.
      fit_mask: ``[N]`` bool from :func:`split_by_episode`.
      min_frames: a variable needs this many defined frames in each part.
      min_std: ... and at least this standard deviation on the scored part (a variable that barely
        changes has no R^2 worth reporting; pixels for positions).

    Returns:
      ``{name: R^2}`` for every variable that qualified.
    """
    features = np.asarray(features, np.float64)
    fit_mask = np.asarray(fit_mask, bool)
    scores = {}
    for name, values in variables.items():
        values = np.asarray(values, np.float64)
        defined = np.isfinite(values)
        fit, scored = defined & fit_mask, defined & ~fit_mask
        if fit.sum() < min_frames or scored.sum() < min_frames or values[scored].std() < min_std:
            continue
        prediction = ridge_predict(features[fit], values[fit], features[scored])
        scores[name] = r2_score(values[scored], prediction)
    return scores
