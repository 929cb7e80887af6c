"""Seeded collection policies: which action to play, and where a new episode starts.

All policies hold the previous action with probability `hold_probability` (0.9) and otherwise
draw a new one; episodes start after a random number of NOOP steps (0..noop_max). Per game:
  * held_random: new actions uniform over the minimal action set.
  * held_random_accelerate (Enduro): new actions contain FIRE (accelerate) with probability
    `fire_probability`, otherwise uniform over the other actions, so the car moves through traffic.
  * held_random_restore (Frostbite, Ms Pac-Man): the player's position (OCAtari "Player" box centre)
    is binned into `cell_size` native-pixel cells; the first state seen in each cell is saved
    (cloneState). An episode lasts at most `segment_steps` steps; at its end (or at game over) the
    next episode continues, with probability `restore_probability`, from the saved state of a cell
    drawn with weight 1/sqrt(1 + visits) (rarely visited places first), else from a fresh reset.
    A restored stretch is a new episode: episodes are always contiguous play.
  * held_random_track (Breakout): every step, with probability `track_probability`, the held
    random action is replaced by one that moves the player towards the object of class
    `track_class` (LEFT / RIGHT, NOOP when within `track_deadband` native pixels), or FIRE when
    that object is not on screen (serve the ball). Held-random play keeps Breakout's paddle at a
    wall and the ball out of play half the time; tracking half the steps keeps the ball in play
    and spreads the paddle over the width (docs/BACKGROUND.md, "Collection policies").
Policies without tracking draw exactly the random numbers they drew before tracking existed, so
their data do not change.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

if TYPE_CHECKING:  # objects.py imports OCAtari; the policies need only the record's methods
    from tfds_atari.objects import FrameObjects


@dataclasses.dataclass(frozen=True)
class CollectionPolicy:
    """Parameters of a collection policy (all recorded in the dataset's metadata)."""

    name: str = "held_random"
    hold_probability: float = 0.9
    noop_max: int = 30
    fire_probability: Optional[float] = None
    restore_probability: float = 0.0
    segment_steps: Optional[int] = None
    cell_size: int = 16
    track_probability: float = 0.0
    track_class: Optional[str] = None
    track_deadband: float = 4.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


HELD_RANDOM = CollectionPolicy()
ACCELERATE = CollectionPolicy(name="held_random_accelerate", fire_probability=0.8)
RESTORE = CollectionPolicy(name="held_random_restore", restore_probability=0.8, segment_steps=250)
TRACK_BALL = CollectionPolicy(name="held_random_track", track_probability=0.5, track_class="Ball")

POLICY_BY_GAME: dict[str, CollectionPolicy] = {
    "breakout": TRACK_BALL,
    "enduro": ACCELERATE,
    "frostbite": RESTORE,
    "mspacman": RESTORE,
}


def policy_for_game(game_name: str) -> CollectionPolicy:
    return POLICY_BY_GAME.get(game_name, HELD_RANDOM)


class ActionSampler:
    """Draws actions for one policy from a seeded generator."""

    def __init__(self, policy: CollectionPolicy, action_names: Sequence[str], rng: np.random.Generator):
        self.policy = policy
        self._rng = rng
        self._num_actions = len(action_names)
        self._action_names = tuple(action_names)
        if policy.fire_probability is not None:
            fire = [i for i, n in enumerate(action_names) if "FIRE" in n]
            other = [i for i, n in enumerate(action_names) if "FIRE" not in n]
            if not fire or not other:
                raise ValueError(f"Policy {policy.name} needs FIRE and non-FIRE actions, got {action_names}")
            self._fire, self._other = np.asarray(fire), np.asarray(other)
        self._previous: Optional[int] = None

    def start_episode(self) -> None:
        self._previous = None

    def _draw(self) -> int:
        if self.policy.fire_probability is None:
            return int(self._rng.integers(self._num_actions))
        group = self._fire if self._rng.random() < self.policy.fire_probability else self._other
        return int(group[self._rng.integers(len(group))])

    def next_action(self, objects: Optional[FrameObjects] = None) -> int:
        """Index into the minimal action set.

        objects: the objects of the frame the action answers (None before an episode's first
          frame); only tracking policies read them.
        """
        if self._previous is None or self._rng.random() >= self.policy.hold_probability:
            self._previous = self._draw()
        if self.policy.track_probability > 0 and objects is not None:
            if self._rng.random() < self.policy.track_probability:
                return self._tracking_action(objects)
        return self._previous

    def _tracking_action(self, objects: FrameObjects) -> int:
        target = objects.center_of(self.policy.track_class)
        if target is None:
            return self._action_index("FIRE")
        if objects.player_center is None:
            return self._previous
        offset = target[0] - objects.player_center[0]
        if abs(offset) <= self.policy.track_deadband:
            return self._action_index("NOOP")
        return self._action_index("RIGHT" if offset > 0 else "LEFT")

    def _action_index(self, name: str) -> int:
        if name not in self._action_names:
            raise ValueError(f"Policy {self.policy.name} needs the action {name}; the game has "
                             f"{self._action_names}")
        return self._action_names.index(name)


class StateArchive:
    """Saved emulator states of visited player cells, for held_random_restore."""

    def __init__(self, cell_size: int):
        self.cell_size = cell_size
        self._states: dict = {}
        self._visits: dict = {}

    def __len__(self) -> int:
        return len(self._states)

    def visit(self, player_center: Optional[tuple[float, float]], clone_state) -> None:
        """Counts a visit to the player's cell; saves `clone_state()` the first time it is seen."""
        if player_center is None:
            return
        cell = (int(player_center[0] // self.cell_size), int(player_center[1] // self.cell_size))
        self._visits[cell] = self._visits.get(cell, 0) + 1
        if cell not in self._states:
            self._states[cell] = clone_state()

    def choose(self, rng: np.random.Generator):
        """A saved state, rarely visited cells first (weight 1/sqrt(1 + visits))."""
        cells = sorted(self._states)
        weights = np.asarray([1.0 / math.sqrt(1.0 + self._visits[c]) for c in cells])
        return self._states[cells[int(rng.choice(len(cells), p=weights / weights.sum()))]]
