"""AtariARI-style linear probes: how well a representation predicts each RAM state variable.

The protocol of the AtariARI benchmark (Anand et al. 2019), as far as it applies here (pure numpy):
  * one linear classifier per state variable, over the 256 byte values, trained with softmax
    cross-entropy, Adam (learning rate 5e-4, epsilon 1e-5), batches of 64, up to 100 epochs;
    the learning rate drops 5x after 5 epochs without a better validation accuracy (not below
    1e-5) and training stops after 15; the weights of the best validation epoch are kept;
  * variables whose value entropy on the probe's training frames is below 0.6 nats are dropped;
  * test frames whose image also occurs among the training or validation frames are dropped;
  * the score of a variable is its test F1, averaged over byte values weighted by their count
    ("weighted" F1); variables are averaged per category, and the categories are averaged.
Differences from the benchmark (written down in docs/notes/one-seed-results.md): the frames come from our
dataset splits (train / validation / test are episode-disjoint), not from a fresh 70/10/20 split
of probe episodes; every epoch visits every training frame once, shuffled; features are
standardised with the training frames' mean and standard deviation (so keypoints in pixels and
pixels in [0, 1] train alike); the softmax runs over the byte values seen in training (a value
never seen cannot be predicted by either form).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Optional

import numpy as np

from permakey_tf.scoring.probe import Standardiser
from permakey_tf.probes.ram_annotations import CATEGORIES, category


@dataclasses.dataclass(frozen=True)
class ProbeSettings:
    """The benchmark's probe training settings (module docstring)."""

    learning_rate: float = 5e-4
    adam_epsilon: float = 1e-5
    batch_size: int = 64
    max_epochs: int = 100
    patience: int = 15
    plateau_patience: int = 5
    plateau_factor: float = 0.2
    min_learning_rate: float = 1e-5
    entropy_threshold: float = 0.6
    seed: int = 0


def entropy_nats(values: np.ndarray) -> float:
    """Entropy (natural log) of the empirical distribution of ``values``."""
    _, counts = np.unique(np.asarray(values).reshape(-1), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def weighted_f1(labels: np.ndarray, predictions: np.ndarray) -> float:
    """F1 per class, averaged with the classes' true counts as weights (sklearn's "weighted")."""
    labels = np.asarray(labels).reshape(-1)
    predictions = np.asarray(predictions).reshape(-1)
    if labels.shape != predictions.shape or labels.size == 0:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} must match, non-empty")
    total = 0.0
    for value in np.unique(labels):
        true = labels == value
        predicted = predictions == value
        hits = float(np.sum(true & predicted))
        denominator = float(true.sum() + predicted.sum())
        total += true.sum() * (2.0 * hits / denominator if denominator else 0.0)
    return total / labels.size


def unique_frame_mask(test_frames: np.ndarray, seen_frames: np.ndarray) -> np.ndarray:
    """``[N_test]`` bool: True for test frames whose bytes occur in none of ``seen_frames``."""
    seen = {frame.tobytes() for frame in np.asarray(seen_frames)}
    return np.array([frame.tobytes() not in seen for frame in np.asarray(test_frames)], bool)


def _softmax_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean loss and its gradient with respect to ``logits`` ``[B, C]`` (targets ``[B]`` int)."""
    shifted = logits - logits.max(1, keepdims=True)
    probabilities = np.exp(shifted)
    probabilities /= probabilities.sum(1, keepdims=True)
    rows = np.arange(len(targets))
    loss = float(-np.log(np.maximum(probabilities[rows, targets], 1e-12)).mean())
    gradient = probabilities
    gradient[rows, targets] -= 1.0
    return loss, gradient / len(targets)


@dataclasses.dataclass
class LinearProbe:
    """A trained probe: ``predict(features) -> byte values``."""

    weights: np.ndarray  # [F, C]
    bias: np.ndarray  # [C]
    classes: np.ndarray  # [C] the byte values the columns stand for
    standardise: Standardiser
    epochs: int
    validation_accuracy: float

    def predict(self, features: np.ndarray) -> np.ndarray:
        logits = self.standardise(np.asarray(features, np.float64)).astype(np.float32) @ self.weights + self.bias
        return self.classes[np.argmax(logits, 1)]


def train_probe(train_features: np.ndarray, train_labels: np.ndarray, validation_features: np.ndarray,
                validation_labels: np.ndarray, settings: ProbeSettings = ProbeSettings()) -> LinearProbe:
    """Trains one linear classifier (module docstring) and returns it with its best weights.

    Args:
      train_features / validation_features: ``[N, F]`` float; train_labels / validation_labels:
        ``[N]`` ints (byte values).
    """
    train_features = np.asarray(train_features, np.float64)
    validation_features = np.asarray(validation_features, np.float64)
    if train_features.ndim != 2 or validation_features.ndim != 2 or \
            train_features.shape[1] != validation_features.shape[1]:
        raise ValueError(f"features must be [N, F] with one F, got {train_features.shape} and "
                         f"{validation_features.shape}")
    classes = np.unique(train_labels)
    index = {int(value): i for i, value in enumerate(classes)}
    targets = np.array([index[int(v)] for v in train_labels])
    standardise = Standardiser(train_features, min_std=1e-6)
    x_train = standardise(train_features).astype(np.float32)
    x_validation = standardise(validation_features).astype(np.float32)
    rng = np.random.default_rng(settings.seed)
    features, num_classes = x_train.shape[1], len(classes)
    weights = (rng.uniform(-1, 1, (features, num_classes)) / math.sqrt(max(features, 1))).astype(np.float32)
    bias = np.zeros(num_classes, np.float32)
    moments = [np.zeros_like(weights), np.zeros_like(bias)]
    squares = [np.zeros_like(weights), np.zeros_like(bias)]
    learning_rate, step = settings.learning_rate, 0
    best = (-1.0, weights.copy(), bias.copy(), 0)
    since_best = since_plateau = 0
    epoch = 0
    for epoch in range(1, settings.max_epochs + 1):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), settings.batch_size):
            rows = order[start:start + settings.batch_size]
            _, gradient = _softmax_cross_entropy(x_train[rows] @ weights + bias, targets[rows])
            step += 1
            for i, (parameter, grad) in enumerate(((weights, x_train[rows].T @ gradient), (bias, gradient.sum(0)))):
                moments[i] = 0.9 * moments[i] + 0.1 * grad
                squares[i] = 0.999 * squares[i] + 0.001 * grad * grad
                corrected = moments[i] / (1 - 0.9**step)
                scale = np.sqrt(squares[i] / (1 - 0.999**step)) + settings.adam_epsilon
                parameter -= (learning_rate * corrected / scale).astype(np.float32)
        accuracy = float(np.mean(classes[np.argmax(x_validation @ weights + bias, 1)] == validation_labels))
        if accuracy > best[0]:
            best, since_best, since_plateau = (accuracy, weights.copy(), bias.copy(), epoch), 0, 0
        else:
            since_best += 1
            since_plateau += 1
            if since_plateau >= settings.plateau_patience:
                learning_rate = max(learning_rate * settings.plateau_factor, settings.min_learning_rate)
                since_plateau = 0
            if since_best >= settings.patience:
                break
    accuracy, weights, bias, best_epoch = best
    return LinearProbe(weights, bias, classes, standardise, best_epoch, accuracy)


@dataclasses.dataclass(frozen=True)
class ProbeData:
    """One representation's features and the RAM of the same frames, per split.

    Attributes:
      features: split name ("train", "validation", "test") -> ``[N, F]``.
      ram: split name -> uint8 ``[N, 128]``.
      test_mask: ``[N_test]`` bool, the test frames that count (None = all), e.g.
        :func:`unique_frame_mask`.
    """

    features: Mapping[str, np.ndarray]
    ram: Mapping[str, np.ndarray]
    test_mask: Optional[np.ndarray] = None


def kept_variables(ram_train: np.ndarray, variables: Mapping[str, int], threshold: float) -> dict[str, int]:
    """The variables whose entropy on the training RAM is at least ``threshold`` nats."""
    return {name: byte for name, byte in variables.items() if entropy_nats(ram_train[:, byte]) >= threshold}


def summarise(f1: Mapping[str, float]) -> dict[str, float]:
    """Per-category means (``<category>``), their mean (``mean_over_categories``) and the plain
    mean over variables (``mean_over_variables``); categories without a variable are left out."""
    summary: dict[str, float] = {}
    for name in CATEGORIES:
        values = [score for variable, score in f1.items() if category(variable) == name]
        if values:
            summary[name] = float(np.mean(values))
    summary["mean_over_categories"] = float(np.mean(list(summary.values()))) if summary else math.nan
    summary["mean_over_variables"] = float(np.mean(list(f1.values()))) if f1 else math.nan
    return summary


def probe_representation(data: ProbeData, variables: Mapping[str, int],
                         settings: ProbeSettings = ProbeSettings()) -> dict:
    """Probes every variable (already entropy-filtered) from one representation.

    Returns:
      ``{"f1": {variable: test F1}, "epochs": {variable: best epoch}, "summary": summarise(f1)}``.
    """
    mask = data.test_mask if data.test_mask is not None else np.ones(len(data.ram["test"]), bool)
    f1, epochs = {}, {}
    for name, byte in variables.items():
        probe = train_probe(data.features["train"], data.ram["train"][:, byte],
                            data.features["validation"], data.ram["validation"][:, byte], settings)
        predictions = probe.predict(data.features["test"][mask])
        f1[name] = weighted_f1(data.ram["test"][mask, byte], predictions)
        epochs[name] = probe.epochs
    return {"f1": f1, "epochs": epochs, "summary": summarise(f1)}


def majority_baseline(ram: Mapping[str, np.ndarray], variables: Mapping[str, int],
                      test_mask: Optional[np.ndarray] = None) -> dict:
    """Every test frame gets the most common training value (the benchmark's MAJ-CLF)."""
    mask = test_mask if test_mask is not None else np.ones(len(ram["test"]), bool)
    f1 = {}
    for name, byte in variables.items():
        values, counts = np.unique(ram["train"][:, byte], return_counts=True)
        truth = ram["test"][mask, byte]
        f1[name] = weighted_f1(truth, np.full_like(truth, values[np.argmax(counts)]))
    return {"f1": f1, "summary": summarise(f1)}
