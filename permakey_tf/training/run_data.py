"""The data of a training run, from its RunConfig: dataset, pipelines per model, per-epoch seeds.

train.py builds one :class:`RunData` per run; everything below is built on permakey_tf.data's
loaders and pipelines. TensorFlow is imported when a RunData is made, not on import.
"""

from __future__ import annotations

from permakey_tf.models.registry import get_model_spec
from permakey_tf.training.run_config import ConfigError, RunConfig


def epoch_seed(seed: int, epoch: int) -> int:
    """Pipeline seed of one epoch: the same for epoch n whether or not the run was resumed."""
    return (int(seed) * 1_000_033 + int(epoch) * 7_919 + 17) % (2**31 - 1)


class RunData:
    """A training run's data: the dataset (built if missing) and its tf.data pipelines.

    Picks the pipeline of the run's model (single frames or frame pairs, permakey_tf.models.registry),
    seeds each training epoch with :func:`epoch_seed`, and gives the extra sets the callbacks
    draw from the validation split (TensorBoard frames, the keypoint-quality set) and the
    training batches precise BatchNorm averages over. Raises ConfigError when a split is too
    small for one batch.
    """

    def __init__(self, config: RunConfig):
        import tfds_atari
        from permakey_tf.data import loading, pipelines
        from permakey_tf.data.noise import NoiseConfig

        self.config = config
        d = config.data
        kwargs = d.builder_arguments()
        builder = tfds_atari.get_builder(config.game, **kwargs)
        if not builder.is_prepared():
            print(f"Building the dataset atari_frames/{builder.builder_config.name} "
                  f"({d.train_frames}/{d.validation_frames}/{d.test_frames} frames) ...", flush=True)
        tfds_atari.ensure_prepared(builder)
        self.data_dir = builder.data_dir
        self.rebuild_command = f"{tfds_atari.build_command(builder)} --rebuild"
        self.split_sizes = {name: split.num_examples for name, split in builder.info.splits.items()}
        self.class_names = tuple(builder.info.features["objects"]["label"].names)
        self._pipelines = pipelines
        self.noise = NoiseConfig(mode=d.noise)
        self.pairs = pipelines.PairConfig(**(d.pairs or {}))
        self.train_examples = loading.load_split(config.game, "train", build_if_missing=False, **kwargs)
        self.val_examples = loading.load_split(config.game, "validation", build_if_missing=False, **kwargs)
        self.batch_size = config.train.batch_size
        self.examples = get_model_spec(config.model).examples
        if self.examples == "frames":
            self.steps_per_epoch = self.split_sizes["train"] // self.batch_size
        else:  # whole batches of pairs (the number of pairs depends on the episodes)
            self.steps_per_epoch = self._count_pairs(self._epoch(0, training=False)) // self.batch_size
        if self.steps_per_epoch < 1:
            raise ConfigError(
                f"The training split has too few {self.examples} "
                f"for one batch of {self.batch_size}: lower --batch-size or raise --train-frames"
            )

    @staticmethod
    def _count_pairs(ds) -> int:
        return int(sum(int(source.shape[0]) for source, _ in ds))

    def _epoch(self, epoch: int, training: bool, examples=None):
        examples = self.train_examples if examples is None else examples
        seed = epoch_seed(self.config.seed, epoch) if training else self.config.seed
        if self.examples == "frames":
            return self._pipelines.frame_batches(examples, batch_size=self.batch_size, training=training,
                                            seed=seed, noise=self.noise)
        return self._pipelines.pair_batches(examples, batch_size=self.batch_size, training=training,
                                       seed=seed, noise=self.noise, pairs=self.pairs)

    def training(self, initial_epoch: int, epochs: int):
        """Epochs initial_epoch..epochs-1 back to back, exactly steps_per_epoch batches each."""
        import tensorflow as tf

        ds = None
        for epoch in range(initial_epoch, epochs):
            part = self._epoch(epoch, training=True).repeat().take(self.steps_per_epoch)
            ds = part if ds is None else ds.concatenate(part)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return ds.with_options(options)

    def validation(self):
        import tensorflow as tf

        ds = self._epoch(0, training=False, examples=self.val_examples)
        if self.examples == "pairs":
            # Pair pipelines have unknown cardinality; Keras warns "ran out of data" without it.
            batches = sum(1 for _ in ds)
            if batches == 0:
                raise ConfigError("The validation split holds no frame pairs; raise its size")
            ds = ds.apply(tf.data.experimental.assert_cardinality(batches))
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return ds.with_options(options)

    def image_frames(self, count: int):
        """``count`` validation frames spread evenly over the split (with the run's fixed
        validation noise): the frames drawn into TensorBoard each epoch."""
        import numpy as np

        ds = self._pipelines.frame_batches(self.val_examples, batch_size=256, training=False,
                                      seed=self.config.seed, noise=self.noise)
        frames = np.concatenate(list(ds.as_numpy_iterator()))
        return frames[np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)]

    def statistics_batches(self, count: int):
        """The first ``count`` training batches in dataset order (no shuffling; the run's fixed
        validation noise): what precise BatchNorm averages over."""
        return self._epoch(0, training=False).take(count)

    def quality_set(self, count: int):
        """``count`` validation frames spread over the split, with their objects (what
        permakey_tf.scoring.quality measures each epoch)."""
        from permakey_tf.scoring.quality import quality_set_from_batches

        ds = self._pipelines.evaluation_batches(self.val_examples, batch_size=256, seed=self.config.seed,
                                           noise=self.noise)
        names = self.class_names
        return quality_set_from_batches(ds, count, names)
