"""permakey-tf: unsupervised object keypoints from local spatial predictability (Keras 3).

``permakey_tf.PermaKey`` and ``permakey_tf.Transporter`` are imported on first use, so that
importing the package (e.g. to validate CLI flags) does not load TensorFlow.
"""

_LAZY = {
    "PermaKey": "permakey_tf.models.permakey",
    "Transporter": "permakey_tf.models.transporter",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'permakey_tf' has no attribute {name!r}")
