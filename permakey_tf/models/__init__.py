"""The models and their building blocks: the keypoint operations (``ops``), the networks (VAE,
LSPN, PointNet, keypoint head), batch normalisation, learning-rate schedules, PermaKey and the
Transporter baseline, and ``registry``, the one table of models that callers look a model up in.

Imports only the package's foundation modules (``permakey_tf.config``); knows nothing of data,
training, scoring, evaluation or probes.
"""
