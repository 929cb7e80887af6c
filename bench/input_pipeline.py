"""tf.data throughput of the permakey_tf.data.pipelines training pipelines: frames (PermaKey) and pairs
(Transporter), clean and noisy; one printed line per configuration.

Source: synthetic examples with the dataset's structure (docs/ARCHITECTURE.md: ``image`` uint8
[84, 84, 3], ``episode_id``, ``step``), episode after episode in step order, as the TFDS builder
writes them. With ``--source png`` (default) each image is stored PNG-encoded and decoded in the
pipeline, as tfds.load does for the real dataset; ``--source memory`` skips decoding (an upper
bound: what the permakey_tf.data.pipelines transforms alone cost). The (encoded) examples are held in
memory, so disk reads are not measured; decoding runs in every epoch.

The training pipelines are measured as train.py uses them (training mode: shuffling, fresh noise
every epoch, batching, prefetch), over ``--epochs`` whole passes after ``--warmup`` untimed ones
(the shuffle buffer is refilled and every image decoded in each pass). Printed: frames/s (pairs/s and frames/s for pairs), and, with
``--train-rate R``, the ratio to a training step's rate R.

Examples:
  python bench/input_pipeline.py                 # frames + pairs x clean + noisy
  python bench/input_pipeline.py --pipeline frames --noise vertical --epochs 5
  python bench/input_pipeline.py --smoke
"""

from __future__ import annotations

import argparse
import sys
import time


from bench import common  # noqa: E402
import tensorflow as tf  # noqa: E402


def synthetic_examples(episodes: int, steps: int, source: str) -> tf.data.Dataset:
    """Examples in generation order; images stored raw ("memory") or PNG-encoded ("png")."""
    frames = common.random_frames(episodes * steps, seed=0)
    episode_id = tf.repeat(tf.range(episodes, dtype=tf.int32), steps)
    step = tf.tile(tf.range(steps, dtype=tf.int32), [episodes])
    if source == "png":
        encoded = tf.stack([tf.io.encode_png(f) for f in tf.unstack(frames)])
        ds = tf.data.Dataset.from_tensor_slices({"png": encoded, "episode_id": episode_id, "step": step})
        ds = ds.map(
            lambda ex: {
                "image": tf.ensure_shape(tf.io.decode_png(ex["png"], channels=3), [84, 84, 3]),
                "episode_id": ex["episode_id"],
                "step": ex["step"],
            },
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        return ds
    return tf.data.Dataset.from_tensor_slices({"image": frames, "episode_id": episode_id, "step": step})


def build_pipeline(kind: str, noise_mode: str, sampling: str, batch_size: int, examples):
    from permakey_tf.data import pipelines
    from permakey_tf.data.noise import NoiseConfig

    noise = NoiseConfig(mode=noise_mode)
    if kind == "frames":
        return pipelines.frame_batches(examples, batch_size=batch_size, training=True, noise=noise)
    pairs = pipelines.PairConfig(sampling=sampling)
    return pipelines.pair_batches(examples, batch_size=batch_size, training=True, noise=noise, pairs=pairs)


def measure(ds, warmup_epochs: int, epochs: int) -> tuple[int, float]:
    """(examples, seconds) over ``epochs`` whole passes after ``warmup_epochs`` untimed ones.

    Whole epochs, because the shuffle buffer is refilled (and every image decoded) each epoch:
    timing a few batches out of a full buffer would measure only the buffer's tail.
    """
    for _ in range(warmup_epochs):
        for _ in ds:
            pass
    examples = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in ds:
            first = tf.nest.flatten(batch)[0]
            examples += int(first.shape[0])
    return examples, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", choices=("frames", "pairs", "all"), default="all")
    parser.add_argument("--noise", choices=("none", "vertical", "horizontal", "both", "all"), default="all",
                        help="'all' = none and both")
    parser.add_argument("--sampling", choices=("window", "gap"), default="window",
                        help="Transporter pair sampling (permakey_tf.data.pipelines.PairConfig defaults otherwise)")
    parser.add_argument("--source", choices=("png", "memory"), default="png")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 32 frames / 64 pairs")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--episode-steps", type=int, default=500,
                        help="steps per episode (window sampling uses whole 100-step windows)")
    parser.add_argument("--epochs", type=int, default=2, help="timed passes over the examples")
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes first")
    parser.add_argument("--train-rate", type=float, default=None,
                        help="a training step's examples/s to compare with (prints the ratio)")
    parser.add_argument("--smoke", action="store_true", help="tiny dataset, few batches")
    args = parser.parse_args(argv)
    if args.smoke:
        args.episodes, args.episode_steps, args.epochs, args.warmup = 4, 100, 1, 0
    kinds = ("frames", "pairs") if args.pipeline == "all" else (args.pipeline,)
    noises = ("none", "both") if args.noise == "all" else (args.noise,)
    examples = synthetic_examples(args.episodes, args.episode_steps, args.source)  # held in memory
    for kind in kinds:
        batch_size = args.batch_size or (32 if kind == "frames" else 64)
        if args.smoke:
            batch_size = 2
        for noise in noises:
            ds = build_pipeline(kind, noise, args.sampling, batch_size, examples)
            count, seconds = measure(ds, args.warmup, args.epochs)
            rate = count / seconds
            fields = {"bench": "input", "pipeline": kind, "noise": noise, "source": args.source}
            if kind == "pairs":
                fields["sampling"] = args.sampling
            fields["batch"] = batch_size
            if kind == "frames":
                fields["frames/s"] = f"{rate:.0f}"
            else:
                fields["pairs/s"] = f"{rate:.0f}"
                fields["frames/s"] = f"{2 * rate:.0f}"
            if args.train_rate:
                fields["x_train_rate"] = f"{rate / args.train_rate:.1f}"
            fields["peak_mem"] = f"'{common.memory_text()}'"
            fields["load"] = common.load_average()
            fields["device"] = f"'{common.describe_device()}'"
            print(common.format_line(fields), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
