"""SavedModel export for TensorFlow Serving.

Layout (what TF Serving's ``--model_base_path`` expects)::

    RUN_DIR/export/<version>/saved_model.pb
                            /variables/...

Signature ``serving_default``:
  input  ``frames``: uint8 ``[N, 84, 84, 3]`` RGB, the dataset's / emulator's frames as they are;
  outputs (float32): ``keypoints`` ``[N, K, 2]`` (y, x) in [-1, 1]; ``keypoints_pixels``
  ``[N, K, 2]`` (x, y) pixels; ``heatmaps`` ``[N, h, w, K]``; ``gaussian_maps`` ``[N, 84, 84, K]``;
  and for PermaKey ``error_maps`` ``[N, 84, 84, L]`` (docs/ARCHITECTURE.md).

Input checking: the signature's dtype is enforced by TensorFlow ("expected to be a uint8 tensor but
is a float tensor"). Its declared shape is *not* checked by a SavedModel signature on its own (a
[84, 84, 3] tensor without batch axis even crashes the process inside the convolution), so the
serving function runs ``tf.ensure_shape`` first: a wrong shape is an InvalidArgumentError "Shape of
tensor frames [...] is not compatible with expected shape [?,84,84,3]".

Beside the graph, ``assets.extra/readout.json`` (a folder TF Serving leaves alone) records how the
exported keypoints are read: ``{"keypoint_refinement_steps": N}`` for PermaKey (the mean-shift
steps on the error maps applied to its outputs; exports written before that setting existed hold
no file and serve the PointNet's keypoints unrefined: :func:`exported_refinement_steps` reads 0).

Export is built with ``keras.export.ExportArchive`` (docs/BACKGROUND.md section 6) on a model that has been
called on a batch (a custom ``train_step`` can leave a model not counted as built).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from permakey_tf.training.export_versions import next_version

SIGNATURE_NAME = "serving_default"
INPUT_NAME = "frames"
# Outputs of model.call() that the signature exposes, in this order; reconstruction stays out.
SERVING_OUTPUTS = ("keypoints", "keypoints_pixels", "heatmaps", "gaussian_maps", "error_maps")
READOUT_FILE = Path("assets.extra") / "readout.json"


def exported_refinement_steps(version_dir: os.PathLike | str) -> int:
    """The ``keypoint_refinement_steps`` a PermaKey export serves with (its readout.json); 0 for an
    export without one (written before the refinement existed, so unrefined)."""
    path = Path(version_dir) / READOUT_FILE
    if not path.exists():
        return 0
    return int(json.loads(path.read_text())["keypoint_refinement_steps"])


def serving_function(model: keras.Model, image_size: int = 84):
    """frames uint8 [N, S, S, 3] -> dict of float32 outputs (SERVING_OUTPUTS present in the model).

    An empty request (N = 0) gets empty outputs of the right shapes, without running the model.
    """
    # PermaKey's inference path skips the latent head and decoder (no reconstruction served).
    predict = getattr(model, "predict_keypoints", None) or (lambda x: model(x, training=False))

    def outputs_of(frames):
        outputs = predict(frames)
        return {name: tf.cast(outputs[name], tf.float32) for name in SERVING_OUTPUTS if name in outputs}

    example = outputs_of(np.zeros([1, image_size, image_size, 3], np.uint8))
    shapes = {name: value.shape[1:] for name, value in example.items()}

    def serve(frames):
        frames = tf.ensure_shape(frames, [None, image_size, image_size, 3])
        return tf.cond(
            tf.shape(frames)[0] > 0,
            lambda: outputs_of(frames),
            lambda: {name: tf.zeros([0, *shape], tf.float32) for name, shape in shapes.items()},
        )

    return serve


def export_saved_model(
    model: keras.Model,
    export_base: os.PathLike | str,
    version: Optional[int] = None,
    image_size: int = 84,
) -> Path:
    """Writes a TF Serving SavedModel of ``model`` to ``export_base/<version>``.

    Args:
      model: a PermaKey or Transporter (anything whose call returns the output dict).
      export_base: the model base path, e.g. RUN_DIR/export.
      version: the version folder (None = next free integer, starting at 1). An existing version
        is an error: TF Serving may be serving it.
      image_size: frames are [N, image_size, image_size, 3].
    Returns:
      the version folder (it holds saved_model.pb).
    """
    export_base = Path(export_base)
    version = next_version(export_base) if version is None else int(version)
    target = export_base / str(version)
    if target.exists():
        raise FileExistsError(
            f"{target} already exists; TF Serving may be serving it. Export another version."
        )
    # Make sure every variable exists (a model after a custom-train_step fit may not be built).
    model(np.zeros([1, image_size, image_size, 3], np.uint8), training=False)
    serve = serving_function(model, image_size)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name=SIGNATURE_NAME,
        fn=serve,
        input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.uint8, name=INPUT_NAME)],
    )
    export_base.mkdir(parents=True, exist_ok=True)
    tmp = export_base / f".tmp-{version}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    archive.write_out(str(tmp), verbose=False)
    steps = getattr(getattr(model, "config", None), "keypoint_refinement_steps", None)
    if steps is not None:
        (tmp / READOUT_FILE).parent.mkdir(exist_ok=True)
        (tmp / READOUT_FILE).write_text(json.dumps({"keypoint_refinement_steps": int(steps)}) + "\n")
    os.replace(tmp, target)  # TF Serving polls the folder: only complete versions appear
    return target
