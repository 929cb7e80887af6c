"""A thin wrapper around ale_py.ALEInterface: frameskip 4, max over the last two frames, 84x84 RGB.

No gymnasium and no sticky actions inside the emulator (repeat_action_probability = 0): the
collection policy decides which action is held, so the data depend only on the seed.
"""

from __future__ import annotations

import ale_py
import numpy as np
from ale_py import roms

from tfds_atari import frames
from tfds_atari.games import Game

FRAMESKIP = 4


class AtariEmulator:
    """One ALE instance for one game.

    Attributes:
      game: the Game.
      action_names: names of the game's minimal action set (e.g. "NOOP", "FIRE", "RIGHTFIRE").
      last_screen: uint8 [210, 160, 3], the max-pooled native screen of the last `step`.
    """

    def __init__(self, game: Game, seed: int):
        self.game = game
        self._ale = ale_py.ALEInterface()
        self._ale.setLoggerMode(ale_py.LoggerMode.Error)
        self._ale.setInt("random_seed", int(seed) % (2**31 - 1))
        self._ale.setFloat("repeat_action_probability", 0.0)
        self._ale.loadROM(roms.get_rom_path(game.rom_id))
        self._actions = list(self._ale.getMinimalActionSet())
        self.action_names = tuple(a.name for a in self._actions)
        shape = (frames.NATIVE_HEIGHT, frames.NATIVE_WIDTH, 3)
        self._screens = (np.zeros(shape, np.uint8), np.zeros(shape, np.uint8))
        self.last_screen = np.zeros(shape, np.uint8)

    @property
    def num_actions(self) -> int:
        return len(self._actions)

    def reset(self, noop_steps: int = 0) -> None:
        """Starts a new game and plays `noop_steps` agent steps of NOOP (random no-op starts)."""
        self._ale.reset_game()
        for _ in range(noop_steps):
            self.step(self.action_names.index("NOOP"))

    def step(self, action_index: int) -> np.ndarray:
        """Plays one agent step: the action for 4 emulator frames.

        Returns:
          uint8 [84, 84, 3]: resize_frame(max(screen of frame 3, screen of frame 4)). The RAM (and
          so the OCAtari objects) afterwards describe emulator frame 4, which the max contains.
        """
        action = self._actions[action_index]
        for k in range(FRAMESKIP):
            self._ale.act(action)
            if k >= FRAMESKIP - 2:
                self._ale.getScreenRGB(self._screens[k - (FRAMESKIP - 2)])
        np.maximum(self._screens[0], self._screens[1], out=self.last_screen)
        return frames.resize_frame(self.last_screen)

    def game_over(self) -> bool:
        return bool(self._ale.game_over())

    def ram(self) -> np.ndarray:
        """uint8 [128] console RAM after the last emulator frame."""
        return self._ale.getRAM()

    def clone_state(self) -> ale_py.ALEState:
        return self._ale.cloneState()

    def restore_state(self, state: ale_py.ALEState) -> None:
        self._ale.restoreState(state)
