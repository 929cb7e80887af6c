"""Which console-RAM byte holds which game-state variable, and each variable's category.

The byte indices are the AtariARI benchmark's annotations (Anand et al. 2019, "Unsupervised State
Representation Learning in Atari", NeurIPS; the table `atari_dict` in
github.com/mila-iqia/atari-representation-learning, atariari/benchmark/ram_annotations.py),
entered here as facts for the games this project builds. Variables that span several bytes there
(lists / ranges) are one variable per byte, named ``<name>_<i>``, as the benchmark does. Enduro has
no annotation in the benchmark, so it cannot be probed. Pure Python, no TensorFlow.

Categories follow the benchmark's rules on the variable's name (its categorization.py):
  agent_localization: a coordinate (``_x``, ``_y``, ``_z``, ``_column``) of the player / agent
    that is not a ball or missile;
  small_object_localization: a coordinate of a ball or missile;
  other_localization: any other coordinate;
  score_clock_lives_display: names with score, clock, lives, meter or display;
  misc: counts, existence bit maps, level / room / game state, directions.
A variable in none of these is probed but belongs to no category (as in the benchmark).
"""

from __future__ import annotations

from typing import Optional

from tfds_atari.games import get_game

# game -> {variable: RAM byte index | list of indices}; AtariARI's table for our games.
_RAM_TABLE: dict[str, dict[str, object]] = {
    "battlezone": dict(
        blue_tank_facing_direction=46, blue_tank_size_y=47, blue_tank_x=48,
        blue_tank2_facing_direction=52, blue_tank2_size_y=53, blue_tank2_x=54, num_lives=58,
        missile_y=105, compass_needles_angle=84, angle_of_tank=4, left_tread_position=59,
        right_tread_position=60, crosshairs_color=108, score=29,
    ),
    "breakout": dict(
        ball_x=99, ball_y=101, player_x=72, blocks_hit_count=77, block_bit_map=list(range(30)),
        score=84,
    ),
    "frostbite": dict(
        top_row_iceflow_x=34, second_row_iceflow_x=33, third_row_iceflow_x=32,
        fourth_row_iceflow_x=31, enemy_bear_x=104, num_lives=76, igloo_blocks_count=77,
        enemy_x=list(range(84, 88)), player_x=102, player_y=100, player_direction=4,
        score=[72, 73, 74],
    ),
    "montezumarevenge": dict(
        room_number=3, player_x=42, player_y=43, player_direction=52, enemy_skull_x=47,
        enemy_skull_y=46, key_monster_x=44, key_monster_y=45, level=57, num_lives=58,
        items_in_inventory_count=61, room_state=62, score_0=19, score_1=20, score_2=21,
    ),
    "mspacman": dict(
        enemy_sue_x=6, enemy_inky_x=7, enemy_pinky_x=8, enemy_blinky_x=9, enemy_sue_y=12,
        enemy_inky_y=13, enemy_pinky_y=14, enemy_blinky_y=15, player_x=10, player_y=16,
        fruit_x=11, fruit_y=17, ghosts_count=19, player_direction=56, dots_eaten_count=119,
        player_score=120, num_lives=123,
    ),
    "pong": dict(
        player_y=51, player_x=46, enemy_y=50, enemy_x=45, ball_x=49, ball_y=54, enemy_score=13,
        player_score=14,
    ),
    "seaquest": dict(
        enemy_obstacle_x=list(range(30, 34)), player_x=70, player_y=97,
        diver_or_enemy_missile_x=list(range(71, 75)), player_direction=86,
        player_missile_direction=87, oxygen_meter_value=102, player_missile_x=103,
        score=[57, 58], num_lives=59, divers_collected_count=62,
    ),
    "spaceinvaders": dict(
        invaders_left_count=17, player_score=104, num_lives=73, player_x=28, enemies_x=26,
        missiles_y=9, enemies_y=24,
    ),
}

CATEGORIES: tuple[str, ...] = (
    "agent_localization", "small_object_localization", "other_localization",
    "score_clock_lives_display", "misc",
)

_COORDINATES = ("_x", "_y", "_z", "_column")
_AGENT_WORDS = ("agent", "player")
_SMALL_OBJECT_WORDS = ("ball", "missile")


class NoRamAnnotationError(ValueError):
    """The game has no RAM annotation (the message lists the games that have one)."""


def probed_games() -> tuple[str, ...]:
    """Games with a RAM annotation, sorted."""
    return tuple(sorted(_RAM_TABLE))


def ram_variables(game: str) -> dict[str, int]:
    """``{variable: RAM byte index}`` of ``game``, multi-byte variables split per byte.

    Raises UnknownGameError for an unknown game, NoRamAnnotationError for a game without one.
    """
    name = get_game(game).name
    if name not in _RAM_TABLE:
        raise NoRamAnnotationError(
            f"{name} has no RAM annotation in the AtariARI benchmark, so it cannot be probed; "
            f"games with one: {', '.join(probed_games())}."
        )
    variables: dict[str, int] = {}
    for variable, index in _RAM_TABLE[name].items():
        if isinstance(index, list):
            variables.update({f"{variable}_{i}": int(byte) for i, byte in enumerate(index)})
        else:
            variables[variable] = int(index)
    return variables


def category(variable: str) -> Optional[str]:
    """The benchmark's category of a variable name (see the module docstring), or None."""
    if any(c in variable for c in _COORDINATES):
        if any(w in variable for w in _SMALL_OBJECT_WORDS):
            return "small_object_localization"
        if any(w in variable for w in _AGENT_WORDS):
            return "agent_localization"
        return "other_localization"
    if any(w in variable for w in ("score", "clock", "lives", "lifes", "meter", "display")):
        return "score_clock_lives_display"
    if any(w in variable for w in ("count", "bit_map", "existence", "level", "room", "game_state",
                                   "direction")):
        return "misc"
    return None


# Published probe F1 (averaged across categories) of the AtariARI benchmark, for the games above
# that it reports: Anand et al. 2019, Table 2 ("data collected by random agents"), as printed in
# the authors' slides (Slides.pdf in github.com/mila-iqia/atari-representation-learning). Their
# frames are 160x210, their data a random agent's, their probes 35k / 5k / 10k frames.
PUBLISHED_METHODS: tuple[str, ...] = ("MAJ-CLF", "RANDOM-CNN", "VAE", "PIXEL-PRED", "CPC", "ST-DIM",
                                      "SUPERVISED")
PUBLISHED_F1: dict[str, tuple[float, ...]] = {
    "breakout": (0.17, 0.51, 0.57, 0.70, 0.74, 0.88, 0.94),
    "frostbite": (0.08, 0.57, 0.51, 0.72, 0.76, 0.75, 0.85),
    "montezumarevenge": (0.08, 0.68, 0.38, 0.74, 0.75, 0.78, 0.87),
    "mspacman": (0.10, 0.49, 0.56, 0.74, 0.65, 0.72, 0.87),
    "pong": (0.10, 0.17, 0.09, 0.70, 0.71, 0.81, 0.87),
    "seaquest": (0.29, 0.57, 0.56, 0.62, 0.66, 0.67, 0.85),
    "spaceinvaders": (0.14, 0.41, 0.52, 0.57, 0.54, 0.57, 0.75),
}


def published_f1(game: str) -> dict[str, float]:
    """``{method: F1}`` the benchmark published for ``game`` (empty if it has none, e.g. BattleZone)."""
    return dict(zip(PUBLISHED_METHODS, PUBLISHED_F1.get(get_game(game).name, ())))
