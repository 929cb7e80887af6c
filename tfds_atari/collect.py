"""Generates the frames of one dataset split, deterministically, optionally over processes.

A split of F frames is cut into chunks (the last one shorter): CHUNK_FRAMES for the training
split, EVAL_SEGMENT_FRAMES for the validation and test splits. Each chunk is played by its own
emulator from a fresh reset with a seed drawn from (seed, split, chunk index) only, so chunks can
run in any process in any order and the data stay the same; results are consumed in chunk order.
Chunks never share states, so no episode (and no saved state) crosses a split.

An evaluation chunk is one segment of consecutive frames from its own episode, recorded after a
random number of unrecorded steps (0 to the episode cap minus the segment; a game over in them
starts a fresh game), so evaluation splits hold many episodes at every stage of play instead of
the first minutes of one or two games. Training chunks start recording at the reset.

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
EVAL_SEGMENT_FRAMES = 64
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
    return [
        ChunkSpec(game, split, i, min(size, num_frames - i * size), seed, max_episode_steps)
        for i in range(num_chunks)
    ]


def _play_unrecorded(emulator: AtariEmulator, detector: ObjectDetector, sampler: ActionSampler,
                     rng: np.random.Generator, noop_max: int, steps: int):
    """Plays ``steps`` steps of the episode under way without recording them; a game over
    starts a fresh game. Returns the step index reached in the current episode and the objects
    of its last frame (what the policy answers next)."""
    step, objects = 0, None
    for _ in range(steps):
        emulator.step(sampler.next_action(objects))
        objects = detector.detect(np.array(emulator.ram(), dtype=np.uint8))
        step += 1
        if emulator.game_over():
            emulator.reset(noop_steps=int(rng.integers(noop_max + 1)))
            detector.reset()
            sampler.start_episode()
            step, objects = 0, None
    return step, objects


def collect_chunk(spec: ChunkSpec) -> list[FrameRecord]:
    """Plays one chunk: `spec.num_frames` frames in one or more episodes (an evaluation chunk:
    after its unrecorded start)."""
    game = get_game(spec.game)
    policy = policy_for_game(game.name)
    seed_sequence = np.random.SeedSequence([spec.seed, SPLIT_INDEX[spec.split], spec.chunk_index])
    emulator_seed, policy_seed = seed_sequence.generate_state(2)
    rng = np.random.default_rng(policy_seed)
    emulator = AtariEmulator(game, seed=int(emulator_seed))
    detector = ObjectDetector(game)
    sampler = ActionSampler(policy, emulator.action_names, rng)
    archive = StateArchive(policy.cell_size) if policy.restore_probability > 0 else None
    max_steps = min(spec.max_episode_steps, policy.segment_steps or spec.max_episode_steps)
    id_base = SPLIT_INDEX[spec.split] * _CHUNKS_PER_SPLIT * _EPISODES_PER_CHUNK + spec.chunk_index * _EPISODES_PER_CHUNK

    records: list[FrameRecord] = []
    episode = 0
    emulator.reset(noop_steps=int(rng.integers(policy.noop_max + 1)))
    # An evaluation segment starts anywhere in an episode that the cap lets it finish in.
    unrecorded = (int(rng.integers(max_steps - spec.num_frames + 1))
                  if spec.split in EVAL_SPLITS and max_steps > spec.num_frames else 0)
    while len(records) < spec.num_frames:
        detector.reset()
        sampler.start_episode()
        step = 0
        objects = None  # the objects of the frame the next action answers
        if unrecorded:
            step, objects = _play_unrecorded(emulator, detector, sampler, rng, policy.noop_max, unrecorded)
            unrecorded = 0
        while len(records) < spec.num_frames and step < max_steps:
            frame = emulator.step(sampler.next_action(objects))
            ram = np.array(emulator.ram(), dtype=np.uint8)  # a copy: the objects and the stored RAM agree
            objects = detector.detect(ram)
            records.append(FrameRecord(id_base + episode, step, frames.encode_png(frame),
                                       objects.to_feature_dict(), ram))
            step += 1
            if emulator.game_over():
                break
            if archive is not None:  # never saves a game-over state
                archive.visit(objects.player_center, emulator.clone_state)
        episode += 1
        if len(records) == spec.num_frames:
            break
        if archive is not None and len(archive) and rng.random() < policy.restore_probability:
            emulator.restore_state(archive.choose(rng))
        else:
            emulator.reset(noop_steps=int(rng.integers(policy.noop_max + 1)))
    return records


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
