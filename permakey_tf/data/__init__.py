"""Data: tf.data pipelines over the ``tfds_atari`` dataset (``pipelines``: frames, frame pairs,
evaluation examples), loading a game's split from the builder (``loading``), and the
Noisy-Atari coloured bars drawn into frames on the fly (``noise``).

Imports only the package's foundation modules; knows nothing of the models, training or
evaluation.
"""
