"""Test-wide settings: quiet TensorFlow, float32 policy restored after each test."""

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
