"""tfds.testing.DatasetBuilderTestCase over a tiny atari_frames config (Pong, 60/20/20 frames).

There is nothing to download: the emulator generates the data, so instead of fake files in
dummy_data/ the test builds a tiny real variant (a second or two of emulation). dummy_data/ holds
only a note saying so, because DatasetBuilderTestCase requires the directory to exist.
"""

import tensorflow_datasets as tfds

from tfds_atari import atari_frames_dataset_builder

TINY_PONG = atari_frames_dataset_builder.AtariFramesConfig.make(
    "pong", train_frames=60, validation_frames=20, test_frames=20
)


class AtariFramesTest(tfds.testing.DatasetBuilderTestCase):
    """Builds, reads back and reloads the tiny config; checks split sizes and split overlap."""

    DATASET_CLASS = atari_frames_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = [TINY_PONG]
    SPLITS = {"train": 60, "validation": 20, "test": 20}
