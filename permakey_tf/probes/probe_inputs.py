"""What the RAM-state probes read: a game's frames and RAM per split, and each run's representations.

probe_state.py (AtariARI-style probes) and experiments/ build on these:

  * :func:`load_probe_splits`: the train / validation / test frames the models see and the console
    RAM they came with, plus which test frames appear in no train or validation frame;
  * :func:`run_representations`: one model's representations of those frames (keypoint
    coordinates, their Gaussian-bump encoding, window colours, window features, fixed layout;
    permakey_tf.probes.representations has the encodings);
  * :func:`random_cnn_features`: the benchmark's RANDOM-CNN baseline;
  * :func:`position_readouts`: how precisely the best single keypoint coordinate holds each
    position variable (permakey_tf.probes.coordinate_readout).

TensorFlow is imported when frames are loaded or a random encoder is built, not on import.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from permakey_tf.probes import coordinate_readout, ram_annotations, representations, state_probe
from permakey_tf.evaluation.predictions import load_eval_set
from permakey_tf.training.runs import NotARunError

SPLITS = ("train", "validation", "test")
RANDOM_CNN_FEATURES = 256


@dataclasses.dataclass
class ProbeSplits:
    """One game's splits as the probes read them: frames the models see and the RAM."""

    frames: dict  # split -> uint8 [N, 84, 84, 3]
    ram: dict  # split -> uint8 [N, 128]
    test_mask: np.ndarray  # [N_test] bool: test frames seen in no train / validation frame


def load_probe_splits(game: str, dataset_kwargs: dict, noise: str, seed: int,
                      max_train_frames: Optional[int], progress: bool) -> ProbeSplits:
    frames, ram = {}, {}
    for split in SPLITS:
        data = load_eval_set(game, noise, dataset_kwargs, max_train_frames if split == "train" else None,
                             seed, split=split, progress=progress)
        if data.ram is None:
            raise NotARunError(
                f"the {game} dataset has no console RAM (dataset version < 1.1.0); rebuild it with "
                f"the current tfds_atari (python -m tfds_atari.build --game {game} ...)")
        frames[split], ram[split] = data.frames, data.ram
    seen = np.concatenate([frames["train"], frames["validation"]])
    return ProbeSplits(frames, ram, state_probe.unique_frame_mask(frames["test"], seen))


def run_representations(predictor, frames: dict, batch_size: int) -> dict:
    """{representation: {split: [N, F]}} of one model (see the module docstring);
    ``keypoints_features`` only when the predictor returns ``window_feature_maps_<i>``."""
    coordinates, encoded, colours, features = {}, {}, {}, {}
    for split, split_frames in frames.items():
        points, windows, window_features = [], [], []
        for start in range(0, len(split_frames), batch_size):
            batch = split_frames[start:start + batch_size]
            outputs = predictor(batch)
            points.append(np.asarray(outputs["keypoints_pixels"], np.float64))
            windows.append(representations.window_colours(batch, outputs["gaussian_maps"]))
            maps = [outputs[name] for name in sorted(outputs) if name.startswith("window_feature_maps_")]
            if maps:
                window_features.append(np.concatenate(
                    [representations.window_features(m, outputs["gaussian_maps"]) for m in maps], 1))
        keypoints = np.concatenate(points)
        coordinates[split] = representations.keypoint_coordinates(keypoints)
        encoded[split] = representations.encode_coordinates(keypoints)
        colours[split] = np.concatenate([encoded[split], np.concatenate(windows)], 1)
        if window_features:
            features[split] = np.concatenate([encoded[split], np.concatenate(window_features)], 1)
    layout = coordinates["train"].mean(0, keepdims=True)
    fixed = {split: np.repeat(layout, len(values), 0) for split, values in coordinates.items()}
    result = {"keypoints": coordinates, "keypoints_encoded": encoded, "keypoints_colours": colours}
    if features:
        result["keypoints_features"] = features
    result["fixed_layout"] = fixed
    return result


def random_cnn_features(frames: dict, model_config, seed: int, batch_size: int) -> dict:
    """{split: [N, 256]}: a randomly initialised encoder of the PermaKeyConfig's shape (paper
    defaults without one), its last block flattened and projected by a fixed random matrix."""
    import keras
    import tensorflow as tf

    from permakey_tf.config import PermaKeyConfig
    from permakey_tf.models.networks import ConvStack
    from permakey_tf.models.ops import scale_frames

    config = model_config if model_config is not None else PermaKeyConfig()
    keras.utils.set_random_seed(seed)
    encoder = ConvStack(config.encoder_kernels, config.encoder_filters, config.encoder_strides,
                        name="random_encoder")
    projection = None
    features = {}
    for split, split_frames in frames.items():
        rows = []
        for start in range(0, len(split_frames), batch_size):
            x = scale_frames(tf.convert_to_tensor(split_frames[start:start + batch_size]), config.image_size)
            last = encoder(x, training=False)[-1].numpy().reshape(len(x), -1)
            if projection is None:
                rng = np.random.default_rng(seed)
                projection = rng.normal(0, 1 / np.sqrt(last.shape[1]), (last.shape[1], RANDOM_CNN_FEATURES))
            rows.append(last @ projection)
        features[split] = np.concatenate(rows)
    return features


def position_readouts(coordinates: dict, splits: ProbeSplits, variables: dict) -> dict:
    """{variable: CoordinateReadout as a dict} for every kept position variable: how precisely the
    best single keypoint coordinate holds it (permakey_tf.probes.coordinate_readout), calibrated on the
    train split, scored on the probes' test frames.

    Args:
      coordinates: {split: [N, 2K]} keypoint coordinates (run_representations' "keypoints").
    """
    test = splits.test_mask
    readouts = {}
    for variable, index in variables.items():
        if not (ram_annotations.category(variable) or "").endswith("_localization"):
            continue
        try:
            readout = coordinate_readout.best_coordinate_readout(
                coordinates["train"].reshape(len(coordinates["train"]), -1, 2), splits.ram["train"][:, index],
                coordinates["test"][test].reshape(int(test.sum()), -1, 2), splits.ram["test"][test, index])
        except ValueError as error:
            readouts[variable] = {"error": str(error)}
            continue
        readouts[variable] = dataclasses.asdict(readout)
    return readouts
