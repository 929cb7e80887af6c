"""The Atari games the project knows: CLI names, ALE ROM ids, keypoints per game.

CLI names are lowercase without separators (``spaceinvaders``); ale-py's ``roms.get_rom_path``
wants snake_case ROM ids (``space_invaders``). Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Game:
    """One game.

    Attributes:
      name: the CLI / dataset-config name, e.g. ``"spaceinvaders"``.
      rom_id: ale-py ROM id, e.g. ``"space_invaders"``.
      ocatari_name: the game name OCAtari expects (``"SpaceInvaders"``).
      num_keypoints: K used by the paper's authors for this game (docs/BACKGROUND.md section 4).
    """

    name: str
    rom_id: str
    ocatari_name: str
    num_keypoints: int


GAMES: dict[str, Game] = {
    g.name: g
    for g in (
        Game("spaceinvaders", "space_invaders", "SpaceInvaders", 25),
        Game("mspacman", "ms_pacman", "MsPacman", 7),
        Game("frostbite", "frostbite", "Frostbite", 20),
        Game("enduro", "enduro", "Enduro", 10),
        Game("battlezone", "battle_zone", "BattleZone", 8),
        Game("montezumarevenge", "montezuma_revenge", "MontezumaRevenge", 10),
        Game("seaquest", "seaquest", "Seaquest", 10),
        Game("pong", "pong", "Pong", 8),
        Game("breakout", "breakout", "Breakout", 8),
    )
}


class UnknownGameError(ValueError):
    """Raised for a game name the project does not know; the message lists the valid ones."""


def get_game(name: str) -> Game:
    """Returns the Game called ``name``; raises UnknownGameError listing valid names otherwise."""
    key = name.strip().lower().replace("_", "").replace("-", "").replace(" ", "")
    if key not in GAMES:
        raise UnknownGameError(
            f"Unknown game {name!r}. Valid games: {', '.join(sorted(GAMES))}."
        )
    return GAMES[key]
