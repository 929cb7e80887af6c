"""Evaluation as a library: a trained run's predictor, an evaluation set, predictions on it.

evaluate.py and probe_state.py are thin command-line tools over this module; experiments/ and
bench/ import it too.

  * :func:`load_predictor`: a run folder's model (Keras checkpoint or exported SavedModel) as a
    function uint8 frames ``[B, 84, 84, 3]`` -> dict of numpy outputs (docs/ARCHITECTURE.md);
  * :func:`load_eval_set`: one split of a game's dataset, clean or with Noisy-Atari bars, with its
    objects, episodes, steps and RAM, as an :class:`EvalSet` of numpy arrays;
  * :func:`predict`: a predictor over an EvalSet's frames in batches, as :class:`Predictions`;
  * :func:`model_diagnostics`: the model-side checks of permakey_tf.scoring.diagnostics on them;
  * the checks evaluate.py and probe_state.py make before loading anything
    (:func:`refuse_refinement_without_error_maps`, :func:`refuse_unknown_classes`) and where
    they write (:func:`output_folder`).

Errors a user can fix are ``permakey_tf.training.runs.NotARunError`` or :class:`UnknownClassesError`,
whose messages name the fix. TensorFlow is imported when a predictor or a dataset is loaded, not
on import.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from permakey_tf.scoring import matching
from permakey_tf.evaluation.figures import figure_indices
from permakey_tf.models.registry import get_model_spec, register_all_models
from permakey_tf.training.runs import CHECKPOINT, EXPORT_DIR, NotARunError, RunFolder

Predictor = Callable[[np.ndarray], dict]


def refuse_refinement_without_error_maps(runs: Sequence[RunFolder]) -> None:
    """--refinement-steps moves keypoints on a model's error maps: a NotARunError naming every run
    whose model has none (Transporter; ``ModelSpec.has_error_maps``), before anything is loaded."""
    others = [f"{run.path} ({get_model_spec(run.model).title})" for run in runs
              if not get_model_spec(run.model).has_error_maps]
    if others:
        raise NotARunError(f"--refinement-steps reads PermaKey's keypoints on its error maps; "
                           f"{', '.join(others)} have none: evaluate them without it")


def load_predictor(run: RunFolder, source: str = "auto", batch_statistics: bool = False,
                   window_feature_maps: bool = False, refinement_steps: Optional[int] = None) -> Predictor:
    """A function uint8 frames ``[B, 84, 84, 3]`` -> dict of numpy outputs (docs/ARCHITECTURE.md).

    Args:
      run: the run.
      source: "checkpoint" (keras.models.load_model of best.keras), "savedmodel" (the export's
        serving_default signature) or "auto" (the checkpoint when present).
      batch_statistics: normalise with the batch's statistics instead of BatchNorm's moving
        averages (docs/BACKGROUND.md section 10: the moving averages can invert PermaKey's error
        maps early in training). Checkpoint only.
      window_feature_maps: also return ``window_feature_maps_<i>``, the model's
        ``window_feature_maps(frames)`` (the features under the keypoints' windows, for the state
        probes). Checkpoint only.
      refinement_steps: read PermaKey's keypoints with this many mean-shift steps on its error
        maps instead of the run's own ``keypoint_refinement_steps`` (0 = the PointNet's keypoints
        as they are). Checkpoint only.
    """
    import tensorflow as tf

    if refinement_steps is not None:
        refuse_refinement_without_error_maps([run])
    if source == "auto":
        source = "checkpoint" if run.checkpoint is not None else "savedmodel"
    if source == "checkpoint":
        if run.checkpoint is None:
            raise NotARunError(f"{run.path} has no {CHECKPOINT}")
        import keras

        from permakey_tf.training.checkpoints import unloadable_reason

        register_all_models()
        try:
            model = keras.models.load_model(run.checkpoint, compile=False)
        except Exception as error:  # zip / h5 / config errors all mean the same to the user
            raise NotARunError(
                f"{run.checkpoint} cannot be loaded ({unloadable_reason(run.checkpoint, error)}). "
                "It may be truncated or corrupt: evaluate the exported SavedModel instead "
                "(--source savedmodel), or retrain / resume the run."
            ) from None
        options = dict(get_model_spec(run.model).inference_kwargs)
        if refinement_steps is not None:
            model.config = model.config.replace(keypoint_refinement_steps=int(refinement_steps))

        def outputs(x):
            result = dict(model(x, training=batch_statistics, **options))
            if window_feature_maps:
                for index, features in enumerate(model.window_feature_maps(x)):
                    result[f"window_feature_maps_{index}"] = features
            return result

        step = tf.function(outputs)
        return lambda frames: {k: v.numpy() for k, v in step(tf.convert_to_tensor(frames)).items()}
    if source == "savedmodel":
        if run.saved_model is None:
            raise NotARunError(f"{run.path} has no {EXPORT_DIR}/<version>/saved_model.pb")
        if batch_statistics or window_feature_maps or refinement_steps is not None:
            raise ValueError("--batch-statistics, --refinement-steps and the window feature maps "
                             "need the Keras checkpoint (checkpoints/best.keras), not the SavedModel")
        try:
            loaded = tf.saved_model.load(str(run.saved_model))
            signature = loaded.signatures["serving_default"]
            input_name = next(iter(signature.structured_input_signature[1]))
        except Exception as error:  # protobuf / checksum / missing-file errors
            raise NotARunError(
                f"The SavedModel {run.saved_model} cannot be loaded ({type(error).__name__}: "
                f"{str(error).strip().splitlines()[0][:200]}). It may be corrupt: export it again "
                "with train.py --export-only RUN_DIR, or evaluate the checkpoint (--source checkpoint)."
            ) from None

        def predict(frames):
            outputs = signature(**{input_name: tf.convert_to_tensor(frames, tf.uint8)})
            return {k: v.numpy() for k, v in outputs.items()}

        return predict
    raise ValueError(f"Unknown model source {source!r}; choose auto, checkpoint or savedmodel")


# ------------------------------------------------------------------------------------------ data


@dataclasses.dataclass
class EvalSet:
    """One game's test frames (clean or noisy) with their ground truth, as numpy arrays.

    Attributes:
      frames: ``[N, 84, 84, 3]`` uint8, what the models see (noise included).
      clean: ``[N, 84, 84, 3]`` uint8 without noise.
      bar_masks: ``[N, 84, 84]`` bool (all False for clean data).
      objects: the frames' objects.
      episode_ids, steps: ``[N]``.
      noise: the noise mode.
      ram: uint8 ``[N, 128]`` console RAM, None when the dataset version has none.
    """

    frames: np.ndarray
    clean: np.ndarray
    bar_masks: np.ndarray
    objects: matching.ObjectSet
    episode_ids: np.ndarray
    steps: np.ndarray
    noise: str
    ram: Optional[np.ndarray] = None


@functools.lru_cache(maxsize=None)
def _class_names_cached(game: str, kwargs_json: str) -> Optional[tuple[str, ...]]:
    return _class_names(game, json.loads(kwargs_json))


def _class_names(game: str, dataset_kwargs: dict) -> Optional[tuple[str, ...]]:
    """The dataset's object class names (label -> name), or None if unavailable."""
    from permakey_tf.data import loading

    try:
        return loading.class_names(game, **dataset_kwargs)
    except Exception:  # noqa: BLE001 - names only label the per-class recalls
        return None


def load_eval_set(game: str, noise: str, dataset_kwargs: dict, max_frames: Optional[int] = None,
                  noise_seed: int = 0, batch_size: int = 64, split: str = "test",
                  progress: bool = True) -> EvalSet:
    """Reads the split through permakey_tf.data.pipelines's evaluation pipeline into numpy arrays."""
    from tqdm import tqdm

    from permakey_tf.data import loading
    from permakey_tf.data.noise import NoiseConfig

    ds = loading.load_evaluation(game, split, batch_size=batch_size, seed=noise_seed,
                              noise=NoiseConfig(mode=noise), **dataset_kwargs)
    frames, clean, masks, episodes, steps, objects, ram = [], [], [], [], [], [], []
    total = 0
    bar = tqdm(desc=f"reading {game} {split} (noise {noise})", unit="frame", total=max_frames,
               disable=not progress, file=sys.stdout)
    for batch in ds.as_numpy_iterator():
        count = len(batch["image"])
        if max_frames is not None:
            count = min(count, max_frames - total)
        for i in range(count):
            n = int(batch["num_objects"][i])
            objects.append({key: batch["objects"][key][i, :n] for key in batch["objects"]})
        frames.append(batch["noisy_image"][:count])
        clean.append(batch["image"][:count])
        masks.append(batch["bar_mask"][:count])
        episodes.append(batch["episode_id"][:count])
        steps.append(batch["step"][:count])
        if "ram" in batch:
            ram.append(batch["ram"][:count])
        total += count
        bar.update(count)
        if max_frames is not None and total >= max_frames:
            break
    bar.close()
    if total == 0:
        raise RuntimeError(f"the {split} split of {game} gave no frames")
    return EvalSet(
        frames=np.concatenate(frames), clean=np.concatenate(clean), bar_masks=np.concatenate(masks),
        objects=matching.ObjectSet.from_frames(
            objects, _class_names_cached(game, json.dumps(dataset_kwargs, sort_keys=True))),
        episode_ids=np.concatenate(episodes), steps=np.concatenate(steps), noise=noise,
        ram=np.concatenate(ram) if ram else None,
    )


# ---------------------------------------------------------------------------------- prediction


@dataclasses.dataclass
class Predictions:
    """A model's outputs on an EvalSet: keypoints for all frames, maps for the figure frames
    (:func:`figure_indices`), and error maps for every frame when asked (PermaKey's loss ratio
    needs them)."""

    keypoints_pixels: np.ndarray  # [N, K, 2]
    figure_gaussian_maps: Optional[np.ndarray]  # [F, 84, 84, K]
    figure_error_maps: Optional[np.ndarray]  # [F, 84, 84, L]
    error_maps: Optional[np.ndarray] = None  # [N, 84, 84, L] float16


def predict(predictor: Predictor, frames: np.ndarray, batch_size: int = 32, desc: str = "",
            map_frames: Optional[np.ndarray] = None, progress: bool = True,
            all_error_maps: bool = False) -> Predictions:
    """Runs the predictor over frames in batches, with a progress bar.

    ``map_frames``: indices whose Gaussian and error maps are kept (default
    :func:`figure_indices`; empty for none). ``all_error_maps`` also keeps every frame's error
    maps (float16).
    """
    from tqdm import tqdm

    wanted = figure_indices(len(frames)) if map_frames is None else np.asarray(map_frames, int)
    keypoints, gaussians, figure_errors, errors = [], [], [], []
    for start in tqdm(range(0, len(frames), batch_size), desc=desc, unit="batch", disable=not progress,
                      file=sys.stdout):
        outputs = predictor(frames[start:start + batch_size])
        if "keypoints_pixels" not in outputs:
            raise KeyError(f"the model's outputs lack 'keypoints_pixels' (got {sorted(outputs)})")
        kps = np.asarray(outputs["keypoints_pixels"], np.float64)
        if not np.all(np.isfinite(kps)):
            raise FloatingPointError(f"the model gave NaN/inf keypoints ({desc}); the run diverged")
        keypoints.append(kps)
        if all_error_maps and "error_maps" in outputs:
            errors.append(np.asarray(outputs["error_maps"], np.float16))
        here = wanted[(wanted >= start) & (wanted < start + len(kps))] - start
        if len(here):
            if "gaussian_maps" in outputs:
                gaussians.append(np.asarray(outputs["gaussian_maps"], np.float32)[here])
            if "error_maps" in outputs:
                figure_errors.append(np.asarray(outputs["error_maps"], np.float32)[here])
    return Predictions(
        keypoints_pixels=np.concatenate(keypoints),
        figure_gaussian_maps=np.concatenate(gaussians) if gaussians else None,
        figure_error_maps=np.concatenate(figure_errors) if figure_errors else None,
        error_maps=np.concatenate(errors) if errors else None,
    )


def model_diagnostics(run: RunFolder, predictor: Predictor, frames: np.ndarray, pred: Predictions,
                      shift_px: int = 4, batch_size: int = 32) -> dict:
    """permakey_tf.scoring.diagnostics for one model on one evaluation set: the shift-equivariance gain
    (``shift_px`` pixels; 0 skips it) and, for PermaKey, its PointNet loss against its fixed
    layout's and its moving-error coverage (needs ``pred.error_maps`` for every frame)."""
    from permakey_tf.scoring import diagnostics

    result = {}
    if shift_px > 0:
        def keypoints_of(shifted):
            return predict(predictor, shifted, batch_size, map_frames=[], progress=False).keypoints_pixels

        result.update(diagnostics.shift_equivariance_gain(
            keypoints_of, frames, shift_px, keypoints=pred.keypoints_pixels))
    if pred.error_maps is not None and len(pred.error_maps) == len(frames):
        from permakey_tf.scoring.quality import error_map_scores

        result.update(error_map_scores(pred.keypoints_pixels, pred.error_maps, run.config.model_config))
    return result


# ------------------------------------------------------------------------- checks and output


def output_folder(out: Optional[str], runs: Sequence[RunFolder], kind: str) -> Path:
    """``out`` if given; else RUN_DIR/<kind> for one run, runs/<kind>/<UTC timestamp> for several."""
    if out is not None:
        return Path(out)
    if len(runs) == 1:
        return runs[0].path / kind
    return Path("runs") / kind / datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")


class UnknownClassesError(ValueError):
    """--include-classes names a class that a run's game does not have."""


def refuse_unknown_classes(include_classes: Sequence[str], runs: Sequence) -> None:
    """UnknownClassesError naming the classes each run's game does have, before anything loads."""
    from tfds_atari.games import get_game
    from tfds_atari.objects import object_class_names

    for run in runs:
        names = object_class_names(get_game(run.game))
        unknown = sorted({c.lower() for c in include_classes} - {n.lower() for n in names})
        if unknown:
            raise UnknownClassesError(f"--include-classes {','.join(unknown)}: not a class of {run.game}; "
                                      f"its classes are {', '.join(names)}")
