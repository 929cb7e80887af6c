"""Generates the frames of one dataset split, deterministically, optionally over processes.

A split of F frames is cut into chunks (the last one shorter): CHUNK_FRAMES for the training
split, EVAL_SEGMENT_FRAMES for the validation and test splits. Each chunk is played by its own
emulator from a fresh reset with a seed drawn from (seed, split, chunk index) only, so chunks can
run in any process in any order and the data stay the same; results are consumed in chunk order.
Chunks never share states, so no episode (and no saved state) crosses a split.

An evaluation chunk is a random stretch of EVAL_SEGMENT_FRAMES consecutive frames of what a
training chunk plays: the same procedure (episodes, game overs, resets, restored states) runs for
a random number of frames (0 to CHUNK_FRAMES minus the segment) before recording starts. So
evaluation splits hold several games at every stage of play, as the training split does, instead
of the first minutes of one or two games. Recording starts only where the episode's step cap
leaves room for the whole segment, so only a game over can cut a segment; the rest of a cut
segment continues in the next episode, as training play does. Training chunks record from their
reset.

Episode ids: split_index * 10**8 + chunk_index * 10**4 + episode index within the chunk
(a chunk holds at most CHUNK_FRAMES < 10**4 episodes). This module imports no TensorFlow.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import math
import multiprocessing
import os
from typing import Iterator, Optional

import numpy as np

from tfds_atari import frames
from tfds_atari.emulator import AtariEmulator
from tfds_atari.games import get_game
from tfds_atari.objects import ObjectDetector
from tfds_atari.policies import ActionSampler, StateArchive, policy_for_game

CHUNK_FRAMES = 2_500
# At least the Transporter pairs' window (100 frames, permakey_tf.data.pipelines.PairConfig), so
# every full segment gives validation pairs.
EVAL_SEGMENT_FRAMES = 128
EVAL_SPLITS = ("validation", "test")
SPLIT_INDEX = {"train": 0, "validation": 1, "test": 2}
_EPISODES_PER_CHUNK = 10**4
_CHUNKS_PER_SPLIT = 10**4


@dataclasses.dataclass(frozen=True)
class ChunkSpec:
    game: str
    split: str
    chunk_index: int
    num_frames: int
    seed: int
    max_episode_steps: int
    max_unrecorded: int = 0  # evaluation chunks: frames played before recording, drawn from [0, this]


@dataclasses.dataclass(frozen=True)
class FrameRecord:
    """One example: PNG bytes of the uint8 [84, 84, 3] frame, ids, the frame's objects and the
    uint8 [128] console RAM the objects were read from (after the step's last emulator frame)."""

    episode_id: int
    step: int
    png: bytes
    objects: dict
    ram: np.ndarray


def chunk_frames(split: str) -> int:
    """Frames per chunk of a split: evaluation splits are cut into short segments."""
    return EVAL_SEGMENT_FRAMES if split in EVAL_SPLITS else CHUNK_FRAMES


def chunk_specs(game: str, split: str, num_frames: int, seed: int, max_episode_steps: int) -> list[ChunkSpec]:
    size = chunk_frames(split)
    num_chunks = math.ceil(num_frames / size)
    if num_chunks > _CHUNKS_PER_SPLIT:
        raise ValueError(f"{num_frames} frames is too many for one {split} split (max {size * _CHUNKS_PER_SPLIT}).")
    specs = []
    for i in range(num_chunks):
        frames_in_chunk = min(size, num_frames - i * size)
        # An evaluation segment is a random stretch of what a training chunk plays.
        max_unrecorded = max(0, CHUNK_FRAMES - frames_in_chunk) if split in EVAL_SPLITS else 0
        specs.append(ChunkSpec(game, split, i, frames_in_chunk, seed, max_episode_steps, max_unrecorded))
    return specs


def _play(emulator: AtariEmulator, detector: ObjectDetector, sampler: ActionSampler,
          archive: Optional[StateArchive], policy, rng: np.random.Generator, max_steps: int):
    """The collection procedure, frame after frame, for as long as the caller reads: episodes of
    at most ``max_steps`` steps, each ended by the cap or a game over and followed by a restored
    state (restore policies) or a fresh reset. Yields ``(episode index, step, frame, ram,
    objects)``."""
    episode = 0
    emulator.reset(noop_steps=int(rng.integers(policy.noop_max + 1)))
    while True:
        detector.reset()
        sampler.start_episode()
        step = 0
        objects = None  # the objects of the frame the next action answers
        while step < max_steps:
            frame = emulator.step(sampler.next_action(objects))
            ram = np.array(emulator.ram(), dtype=np.uint8)  # a copy: the objects and the stored RAM agree
            objects = detector.detect(ram)
            yield episode, step, frame, ram, objects
            step += 1
            if emulator.game_over():
                break
            if archive is not None:  # never saves a game-over state
                archive.visit(objects.player_center, emulator.clone_state)
        episode += 1
        if archive is not None and len(archive) and rng.random() < policy.restore_probability:
            emulator.restore_state(archive.choose(rng))
        else:
            emulator.reset(noop_steps=int(rng.integers(policy.noop_max + 1)))


def collect_chunk(spec: ChunkSpec) -> list[FrameRecord]:
    """Plays one chunk: `spec.num_frames` frames in one or more episodes; an evaluation chunk
    records them after a random number of unrecorded frames of the same play."""
    game = get_game(spec.game)
    policy = policy_for_game(game.name)
    seed_sequence = np.random.SeedSequence([spec.seed, SPLIT_INDEX[spec.split], spec.chunk_index])
    emulator_seed, policy_seed = seed_sequence.generate_state(2)
    rng = np.random.default_rng(policy_seed)
    emulator = AtariEmulator(game, seed=int(emulator_seed))
    sampler = ActionSampler(policy, emulator.action_names, rng)
    archive = StateArchive(policy.cell_size) if policy.restore_probability > 0 else None
    max_steps = min(spec.max_episode_steps, policy.segment_steps or spec.max_episode_steps)
    id_base = SPLIT_INDEX[spec.split] * _CHUNKS_PER_SPLIT * _EPISODES_PER_CHUNK + spec.chunk_index * _EPISODES_PER_CHUNK
    unrecorded = int(rng.integers(spec.max_unrecorded + 1)) if spec.max_unrecorded else 0

    records: list[FrameRecord] = []
    play = _play(emulator, ObjectDetector(game), sampler, archive, policy, rng, max_steps)
    for played, (episode, step, frame, ram, objects) in enumerate(play):
        if played < unrecorded:
            continue
        if not records and spec.max_unrecorded and step + min(spec.num_frames, max_steps) > max_steps:
            continue  # an evaluation segment starts where the episode's cap leaves room for all of it
        records.append(FrameRecord(id_base + episode, step, frames.encode_png(frame), objects.to_feature_dict(), ram))
        if len(records) == spec.num_frames:
            return records
    raise AssertionError("unreachable: play never ends")


def _default_workers(num_chunks: int) -> int:
    requested = os.environ.get("TFDS_ATARI_WORKERS")
    workers = int(requested) if requested else (os.cpu_count() or 1)
    return max(1, min(workers, num_chunks))


def iter_split(game: str, split: str, num_frames: int, seed: int, max_episode_steps: int,
               num_workers: Optional[int] = None) -> Iterator[FrameRecord]:
    """Yields the split's frames in (chunk, episode, step) order; the same for any `num_workers`.

    num_workers: processes playing chunks (default: $TFDS_ATARI_WORKERS or the CPU count); 1 plays
    in this process.
    """
    specs = chunk_specs(game, split, num_frames, seed, max_episode_steps)
    workers = _default_workers(len(specs)) if num_workers is None else max(1, min(num_workers, len(specs)))
    if workers == 1:
        for spec in specs:
            yield from collect_chunk(spec)
        return
    # "spawn": the parent has TensorFlow's threads running; workers import only this module.
    # At most 2 chunks per worker are in flight, so memory stays bounded when the consumer
    # (TFDS's encoder) is slower than the emulators.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        remaining = iter(specs)
        pending = collections.deque(
            pool.apply_async(collect_chunk, (spec,)) for spec in itertools.islice(remaining, 2 * workers)
        )
        while pending:
            records = pending.popleft().get()
            for spec in itertools.islice(remaining, 1):
                pending.append(pool.apply_async(collect_chunk, (spec,)))
            yield from records
