"""The final PointNet phase: a fresh PointNet fitted alone on the kept checkpoint's error maps.

No gradient crosses between PermaKey's modules, so the encoder and the LSPNs learn the same
whatever the PointNet does; the PointNet, however, learns on error maps that keep changing under
it during joint training, and where it settles depends on those early maps and its seed. With
``PermaKeyConfig.pointnet_final_steps > 0`` train.py ends a run with this phase (docs/TRAINING.md,
"The final PointNet phase"): the error maps of the kept checkpoint are computed once for the
first ``pointnet_final_frames`` training frames (inference mode, as the model outputs them), a
fresh PointNet is fitted on them alone (``pointnet.fit_pointnet``: Adam at
``pointnet_final_learning_rate``, random batches) and its BatchNorm statistics are averaged over
the same maps. A fresh fit can also settle on a static layout (the score, the walls), so the
refitted PointNet replaces the joint one only if it explains the error maps of held-out frames
better relative to its own fixed layout. By default (``pointnet_final_criterion="loss_ratio"``)
its PointNet loss divided by the loss of its keypoints' mean positions
(``diagnostics.pointnet_loss_ratio``, the model's own loss) must be lower than the joint
PointNet's; with ``"moving_error_coverage"`` its keypoints must cover more of the error that moves
than the joint ones, each beyond its own fixed layout (``diagnostics.moving_error_coverage``'s
gain). Both are computed and recorded whichever decides. The choice uses no labels.

Contract of :func:`finish_run`:
- only the PointNet's weights can change; the encoder, decoder and LSPN weights are the joint ones;
- the checkpoint the phase started from is kept as ``checkpoints/joint.keras``, and
  ``checkpoints/final_pointnet.json`` records the SHA-256 of both files, both loss ratios and
  which PointNet was kept (``"kept": "refit"`` or ``"joint"``), both PointNets' scores under
  each criterion and the criterion that decided; the phase runs once per
  joint checkpoint (a resumed finished run does not redo it; a resumed run whose best
  checkpoint changed runs it on the new one);
- the same checkpoint, frames and seed give the same PointNet.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

from permakey_tf.atomic_files import copy_atomically, file_digest, read_json_record, write_json_atomically

# The PermaKeyConfig fields that act only after joint training (a finished run's joint training
# can be reused with other values: experiments/over_seeds.py --reuse-joint).
FIELDS = ("pointnet_final_steps", "pointnet_final_learning_rate", "pointnet_final_frames",
          "pointnet_final_sigma_start", "pointnet_final_criterion")
JOINT_CHECKPOINT = "joint.keras"
RECORD = "final_pointnet.json"


def settled_error_maps(model, frame_batches: Iterable, count: int) -> np.ndarray:
    """Inference-mode error maps ``[N, S, S, L]`` float32 of the first ``count`` frames of
    ``frame_batches`` (uint8 ``[B, H, W, 3]`` batches); N = min(count, frames available)."""
    maps, total = [], 0
    for batch in frame_batches:
        if total >= count:
            break
        batch = np.asarray(batch)[:count - total]
        maps.append(np.asarray(model.predict_keypoints(batch)["error_maps"], np.float32))
        total += len(batch)
    if not maps:
        raise ValueError("The final PointNet phase got no training frames")
    return np.concatenate(maps)


def held_out_scores(model, frames: np.ndarray) -> dict[str, float]:
    """The two label-free criteria of the model's keypoints (as the model outputs them,
    ``quality.model_outputs``) on the error maps of ``frames`` (uint8 ``[N, H, W, 3]``):

    * ``loss_ratio``: the PointNet loss over that of the keypoints' fixed layout (their mean
      positions); < 1 means the keypoints follow what the maps show frame by frame;
    * ``moving_error_coverage_gain``: the share of the error that moves under the keypoints'
      windows minus the same share for their fixed layout (> 0: they follow what moves).
    """
    from permakey_tf.scoring.quality import error_map_scores, model_outputs

    outputs = model_outputs(model, frames)
    scores = error_map_scores(outputs["keypoints_pixels"], outputs["error_maps"], model.config)
    return {"loss_ratio": scores["pointnet_loss_ratio"],
            "moving_error_coverage_gain": scores["moving_error_coverage_gain"]}


def refit_is_better(criterion: str, joint: dict[str, float], refit: dict[str, float]) -> bool:
    """Does ``criterion`` (``PermaKeyConfig.pointnet_final_criterion``) prefer the refitted
    PointNet, given both PointNets' :func:`held_out_scores`? A tie keeps the joint one."""
    if criterion == "loss_ratio":
        return refit["loss_ratio"] < joint["loss_ratio"]
    if criterion == "moving_error_coverage":
        return refit["moving_error_coverage_gain"] > joint["moving_error_coverage_gain"]
    raise ValueError(f"unknown final-phase criterion {criterion!r}")


def refit_pointnet(model, maps: np.ndarray, steps: int, batch_size: int, learning_rate: float,
                   seed: int, sigma_start: float = 0.0) -> None:
    """Replaces ``model.pointnet``'s weights by a fresh PointNet fitted on ``maps``
    ``[N, S, S, L]`` alone (its Gaussians shrinking from ``sigma_start`` if > 0), and sets its
    BatchNorm statistics to the average batch statistics over those maps (batches of
    ``batch_size``). The other modules are not touched."""
    import tensorflow as tf

    from permakey_tf.models.batch_norm import recompute_statistics
    from permakey_tf.models.pointnet import fit_pointnet, keypoint_outputs

    config = model.config
    fitted = fit_pointnet(config, maps, steps, batch_size, learning_rate, seed, sigma_start)
    model.pointnet.set_weights(fitted.get_weights())

    def statistics_pass(batch):
        keypoint_outputs(model.pointnet, config, batch, training=True)

    batches = (tf.constant(maps[i:i + batch_size]) for i in range(0, len(maps) - batch_size + 1, batch_size))
    recompute_statistics(model.pointnet, statistics_pass, batches)


def finish_run(checkpoint_dir: os.PathLike | str, phase, frame_batches: Iterable, held_out_frames: np.ndarray,
               batch_size: int, seed: int, log: Callable[[str], None] = print,
               quality: Optional[Callable] = None) -> bool:
    """Applies the final PointNet phase to ``checkpoint_dir/best.keras`` (module docstring).

    Args:
      checkpoint_dir: the run's checkpoints folder.
      phase: the run's PermaKeyConfig, whose ``pointnet_final_*`` fields (:data:`FIELDS`) say
        what to do (they may differ from those of the checkpoint's config, e.g. when a finished
        joint training is reused).
      frame_batches: training frames in a fixed order (uint8 batches; the first
        ``pointnet_final_frames`` are used).
      held_out_frames: uint8 ``[N, H, W, 3]`` frames not fitted on (e.g. validation frames; no
        labels are used) on which the joint and the refitted PointNet's loss ratios are compared.
      batch_size: the PointNet's batch size (the run's).
      seed: draws the fresh PointNet and its batches.
      log: prints progress lines.
      quality: optional ``quality(model) -> str`` logged before and after the phase.

    Returns:
      True if the phase ran, False if best.keras already is its result or ``phase`` asks for
      no phase. The saved model keeps the checkpoint's own config.
    """
    import keras

    from permakey_tf.training import checkpoints

    checkpoint_dir = Path(checkpoint_dir)
    best, joint, record_path = checkpoint_dir / "best.keras", checkpoint_dir / JOINT_CHECKPOINT, checkpoint_dir / RECORD
    record = read_json_record(record_path)
    if record.get("result_sha256") == file_digest(best):
        log(f"The final PointNet phase was already applied to {best}.")
        return False
    steps = getattr(phase, "pointnet_final_steps", 0)
    if steps <= 0:
        return False
    model = keras.models.load_model(best, compile=False)
    if quality is not None:
        log(f"joint PointNet: {quality(model)}")
    criterion = getattr(phase, "pointnet_final_criterion", "loss_ratio")
    joint_scores = held_out_scores(model, held_out_frames)
    maps = settled_error_maps(model, frame_batches, phase.pointnet_final_frames)
    sigma_start = getattr(phase, "pointnet_final_sigma_start", 0.0)
    log(f"Final PointNet phase: {steps} steps of {batch_size} on the error maps of {len(maps)} "
        f"training frames (learning rate {phase.pointnet_final_learning_rate:g}"
        + (f", sigma from {sigma_start:g}" if sigma_start else "") + ") ...")
    refit_pointnet(model, maps, steps, batch_size, phase.pointnet_final_learning_rate, seed, sigma_start)
    refit_scores = held_out_scores(model, held_out_frames)
    kept = "refit" if refit_is_better(criterion, joint_scores, refit_scores) else "joint"
    if quality is not None:
        log(f"refitted PointNet: {quality(model)}")
    log(f"On {len(held_out_frames)} held-out frames, PointNet loss over its fixed layout's: joint "
        f"{joint_scores['loss_ratio']:.3f}, refitted {refit_scores['loss_ratio']:.3f}; moving error "
        f"covered beyond the fixed layout: joint {joint_scores['moving_error_coverage_gain']:.3f}, "
        f"refitted {refit_scores['moving_error_coverage_gain']:.3f}. By the {criterion.replace('_', ' ')}: "
        f"keeping the {kept} PointNet.")
    copy_atomically(best, joint)
    joint_digest = file_digest(joint)
    if kept == "refit":
        checkpoints.save_model_atomically(model, best)
        log(f"Saved {best} (the joint checkpoint is kept as {joint}).")
    write_json_atomically(record_path, {"joint_sha256": joint_digest, "result_sha256": file_digest(best),
                                        "kept": kept, "criterion": criterion,
                                        "joint_loss_ratio": joint_scores["loss_ratio"],
                                        "refit_loss_ratio": refit_scores["loss_ratio"],
                                        "joint_moving_error_coverage_gain": joint_scores["moving_error_coverage_gain"],
                                        "refit_moving_error_coverage_gain": refit_scores["moving_error_coverage_gain"],
                                        "held_out_frames": len(held_out_frames),
                                        "steps": steps, "frames": int(len(maps)), "batch_size": batch_size,
                                        "learning_rate": phase.pointnet_final_learning_rate, "seed": seed,
                                        "sigma_start": sigma_start})
    return True
