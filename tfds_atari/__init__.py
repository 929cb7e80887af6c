"""TensorFlow Datasets builder for Atari frames with per-frame object boxes."""
