"""SavedModel export for TF Serving: layout, signature, fresh-process loading with no project code,
same outputs as the Keras model, clear errors for wrong inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from permakey_tf.training import run_flags
from permakey_tf.training.export import SIGNATURE_NAME, export_saved_model
from permakey_tf.training.export_versions import next_version

# Runs in a fresh interpreter, outside the repository, with nothing but TensorFlow and NumPy:
# what a serving client or TF Serving has.
CLIENT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    frames = np.load(sys.argv[1])
    report = {"models": {}}
    for name, path in json.loads(sys.argv[2]).items():
        serve = tf.saved_model.load(path).signatures["serving_default"]
        outputs = serve(frames=tf.constant(frames))
        np.savez(sys.argv[3] + "_" + name + ".npz", **{k: v.numpy() for k, v in outputs.items()})
        errors = {}
        for label, bad in (
            ("float32", frames.astype(np.float32)),
            ("no_batch_axis", frames[0]),
            ("64x64", frames[:, :64, :64]),
            ("grayscale", frames[..., :1]),
        ):
            try:
                serve(frames=tf.constant(bad))
                errors[label] = None
            except Exception as error:  # noqa: BLE001
                errors[label] = str(error)
        empty = serve(frames=tf.constant(frames[:0]))
        alone = np.concatenate([serve(frames=tf.constant(frames[i:i + 1]))["keypoints_pixels"].numpy()
                                for i in range(len(frames))])
        reversed_batch = serve(frames=tf.constant(frames[::-1]))["keypoints_pixels"].numpy()[::-1]
        batch = outputs["keypoints_pixels"].numpy()
        _, inputs = serve.structured_input_signature
        report["models"][name] = {
            "empty": {k: v.shape.as_list() for k, v in empty.items()},
            "alone_vs_batch_px": float(np.abs(alone - batch).max()),
            "reversed_vs_batch_px": float(np.abs(reversed_batch - batch).max()),
            "inputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in inputs.items()},
            "outputs": sorted(outputs),
            "errors": errors,
        }
    report["project_modules"] = sorted(
        m for m in sys.modules if m.split(".")[0] in ("permakey_tf", "tfds_atari", "train")
    )
    print(json.dumps(report))
    """
)


def _models():
    from permakey_tf.models.permakey import PermaKey
    from permakey_tf.models.transporter import Transporter

    smoke_permakey = run_flags.resolve_config({"preset": "smoke"}).model_config
    smoke_transporter = run_flags.resolve_config({"preset": "smoke", "model": "transporter"}).model_config
    return {"permakey": PermaKey(smoke_permakey), "transporter": Transporter(smoke_transporter)}


def _frames(seed=0, count=3):
    """Frames with a few bright blocks on a dark background, so that keypoints differ per frame."""
    rng = np.random.default_rng(seed)
    frames = np.full([count, 84, 84, 3], 20, np.uint8)
    for frame in frames:
        for _ in range(4):
            y, x = rng.integers(0, 76, size=2)
            frame[y:y + 8, x:x + 8] = rng.integers(120, 255, size=3)
    return frames


def test_saved_model_in_a_fresh_process_matches_the_keras_model(tmp_path):
    import keras

    keras.utils.set_random_seed(3)
    models = _models()
    frames = _frames()
    paths = {}
    for name, model in models.items():
        target = export_saved_model(model, tmp_path / name / "export")
        assert target == tmp_path / name / "export" / "1"
        assert (target / "saved_model.pb").exists() and (target / "variables").is_dir()
        paths[name] = str(target)
    np.save(tmp_path / "frames.npy", frames)

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    result = subprocess.run(
        [sys.executable, "-c", CLIENT, str(tmp_path / "frames.npy"), json.dumps(paths),
         str(tmp_path / "out")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["project_modules"] == [], "the SavedModel must load without project code"

    expected_outputs = {
        "permakey": ["error_maps", "gaussian_maps", "heatmaps", "keypoints", "keypoints_pixels"],
        "transporter": ["gaussian_maps", "heatmaps", "keypoints", "keypoints_pixels"],
    }
    for name, model in models.items():
        info = report["models"][name]
        assert info["inputs"] == {"frames": ["uint8", [None, 84, 84, 3]]}
        assert info["outputs"] == expected_outputs[name]
        served = np.load(tmp_path / f"out_{name}.npz")
        keras_outputs = model(frames, training=False)
        for key in expected_outputs[name]:
            np.testing.assert_allclose(served[key], np.asarray(keras_outputs[key]), atol=1e-4,
                                       err_msg=f"{name} {key}")
        # The keypoints are per-frame, not one constant layout (the test would be weak otherwise).
        assert np.abs(served["keypoints_pixels"][0] - served["keypoints_pixels"][1]).max() > 1e-3
        # A frame's keypoints do not depend on its batch (alone, in a batch, in any order), and
        # an empty request gets empty outputs.
        assert info["alone_vs_batch_px"] < 1e-3 and info["reversed_vs_batch_px"] < 1e-3, info
        assert all(shape[0] == 0 for shape in info["empty"].values())
        assert sorted(info["empty"]) == expected_outputs[name]
        errors = info["errors"]
        assert "uint8" in errors["float32"]
        for label in ("no_batch_axis", "64x64", "grayscale"):
            assert errors[label] is not None and "[?,84,84,3]" in errors[label], (label, errors[label])


def test_versions_are_numbered_and_never_overwritten(tmp_path):
    from permakey_tf.models.transporter import Transporter

    model = Transporter(run_flags.resolve_config({"preset": "smoke", "model": "transporter"}).model_config)
    assert next_version(tmp_path / "missing") == 1
    export_saved_model(model, tmp_path, version=3)
    assert next_version(tmp_path) == 4
    with pytest.raises(FileExistsError, match="already exists"):
        export_saved_model(model, tmp_path, version=3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_mixed_precision_export_serves_float32(tmp_path):
    import keras
    import tensorflow as tf

    from permakey_tf.models.permakey import PermaKey

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = PermaKey(run_flags.resolve_config({"preset": "smoke"}).model_config)
    target = export_saved_model(model, tmp_path)
    serve = tf.saved_model.load(str(target)).signatures[SIGNATURE_NAME]
    outputs = serve(frames=tf.constant(_frames(count=2)))
    assert {v.dtype for v in outputs.values()} == {tf.float32}
    assert outputs["keypoints"].shape == (2, model.config.num_keypoints, 2)


def test_export_records_the_keypoint_readout_it_serves(tmp_path):
    """A PermaKey export says how many refinement steps its keypoints had (evaluate.py reports it
    for SavedModel evaluations); an export without the record (written before the setting
    existed) served unrefined keypoints; Transporter has no such setting."""
    import dataclasses

    from permakey_tf.training.export import READOUT_FILE, exported_refinement_steps
    from permakey_tf.models.permakey import PermaKey
    from permakey_tf.models.transporter import Transporter

    config = run_flags.resolve_config({"preset": "smoke"}).model_config
    for steps in (0, 3):
        target = export_saved_model(PermaKey(dataclasses.replace(config, keypoint_refinement_steps=steps)),
                                    tmp_path / "permakey")
        assert exported_refinement_steps(target) == steps
    (target / READOUT_FILE).unlink()
    assert exported_refinement_steps(target) == 0
    transporter = Transporter(run_flags.resolve_config({"preset": "smoke", "model": "transporter"}).model_config)
    assert not (export_saved_model(transporter, tmp_path / "transporter") / READOUT_FILE).exists()
