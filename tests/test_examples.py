"""examples/: run on a small export so that they cannot rot."""

import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def test_keypoints_for_agent_plays_and_reads_each_frames_keypoints(tmp_path):
    import keras
    import tensorflow as tf

    from permakey_tf.training import run_flags
    from permakey_tf.training.export import export_saved_model
    from permakey_tf.models.permakey import PermaKey

    model = PermaKey(run_flags.resolve_config({"preset": "smoke", "game": "pong"}).model_config)
    model.compile()
    version = export_saved_model(model, tmp_path / "export")
    keras.backend.clear_session()
    out = tmp_path / "agent"
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "keypoints_for_agent.py"), str(version),
                             "--game", "pong", "--steps", "12", "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    saved = np.load(out / "keypoints.npz")
    assert saved["frames"].shape == (12, 84, 84, 3) and saved["keypoints"].shape == (12, 4, 2)
    assert len(np.unique(saved["frames"].reshape(12, -1), axis=0)) > 1  # the game moved
    assert np.all((saved["keypoints"] >= 0) & (saved["keypoints"] <= 84))
    # Each step's keypoints are the model's for that frame (served one at a time in the example).
    served = tf.saved_model.load(str(version)).signatures["serving_default"]
    batch = served(frames=tf.constant(saved["frames"]))["keypoints_pixels"].numpy()
    np.testing.assert_allclose(saved["keypoints"], batch, atol=1e-3)
    assert (out / "frames.png").stat().st_size > 1000
