"""Test-wide settings (quiet TensorFlow, float32 policy restored after each test) and the fixtures
more than one test module uses: the smoke preset's dataset and a saved run folder."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYTHONHASHSEED", "0")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_dtype_policy():
    """Tests that switch Keras to a mixed-precision policy must not leak it into other tests."""
    yield
    import keras

    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="module")
def smoke_data_dir(tmp_path_factory):
    """The smoke preset's dataset (64/16/16 Space Invaders frames), built once for the module."""
    import tfds_atari

    from permakey_tf.training import run_flags

    data_dir = tmp_path_factory.mktemp("tfds")
    smoke = run_flags.resolve_config({"preset": "smoke"}).data
    builder = tfds_atari.get_builder(
        "spaceinvaders", data_dir=str(data_dir), train_frames=smoke.train_frames,
        validation_frames=smoke.validation_frames, test_frames=smoke.test_frames,
    )
    tfds_atari.ensure_prepared(builder)
    return data_dir


@pytest.fixture()
def saved_run(tmp_path):
    """A run folder holding a (smoke, untrained) PermaKey checkpoint and its SavedModel."""
    import keras

    from permakey_tf.models.permakey import PermaKey
    from permakey_tf.training import run_flags, runs
    from permakey_tf.training.export import export_saved_model

    config = run_flags.resolve_config({"preset": "smoke", "logdir": str(tmp_path), "name": "saved"})
    run_dir = runs.create_run_dir(config)
    model = PermaKey(config.model_config)
    model.compile()
    (run_dir / "checkpoints").mkdir()
    model.save(run_dir / "checkpoints" / "best.keras")
    export_saved_model(model, run_dir / "export")
    keras.backend.clear_session()
    return run_dir
