"""Per-frame object boxes from OCAtari 2.2.1 in RAM mode, as the dataset stores them.

OCAtari is used at the level of its RAM extractors (`init_objects` / `detect_objects_ram`) on our
own ALEInterface, not through its gymnasium env, so the boxes describe exactly the emulator frame
we read the RAM after (the last of the 4 skipped frames; checked against the Pong ball's pixels).
Boxes are in the native 160 wide x 210 tall screen; we normalise them by 160 and 210.

Known OCAtari quirks handled here (docs/BACKGROUND.md section 7): `hud=True` crashes on Enduro (and
Enduro has no HUD extractor anyway), so Enduro runs with `hud=False`; boxes that leave the screen
are clipped; boxes with no area after clipping are dropped.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from typing import Mapping, Optional

import numpy as np

import ocatari.ram  # noqa: F401  (imports every game module into sys.modules)
from ocatari.ram.extract_ram_info import detect_objects_ram, get_max_objects, init_objects
from ocatari.ram.game_objects import GameObject

from tfds_atari import frames
from tfds_atari.games import Game

# Static / background classes (docs/BACKGROUND.md section 8), plus ones found here: Frostbite's igloo
# Door, Montezuma's Disappearing_Platform and laser Beam (fixed positions, part of the level).
STATIC_CLASSES = frozenset({
    "Pill", "PowerPill", "Shield", "House", "FloatingBlock", "Block", "Ladder", "Platform",
    "Wall", "Rope", "Barrier", "Conveyer_Belt", "Radar",
    "Door", "Disappearing_Platform", "Beam",
})
# HUD classes OCAtari does not flag (obj.hud is False for them): Montezuma's inventory (*_HUD),
# BattleZone's Score/Life. Objects are HUD if OCAtari says so or their class is listed here.
HUD_CLASSES = frozenset({"Score", "Life", "Lives"})
# Per-game additions. BattleZone's "Player" is the fixed cockpit and its crosshair never moves
# (docs/BACKGROUND.md section 7); its radar and radar blips are part of the cockpit display (HUD).
EXTRA_STATIC_CLASSES: dict[str, frozenset] = {"battlezone": frozenset({"Player", "Crosshair"})}
EXTRA_HUD_CLASSES: dict[str, frozenset] = {"battlezone": frozenset({"Radar", "Radar_Content"})}
# Games whose OCAtari HUD extraction is broken (hud=True crashes).
NO_HUD_GAMES = frozenset({"enduro"})


def _ocatari_module(game: Game):
    return sys.modules[f"ocatari.ram.{game.ocatari_name.lower()}"]


def object_class_names(game: Game) -> tuple[str, ...]:
    """The OCAtari object categories of `game`, in a fixed order (the dataset's label names).

    The categories OCAtari declares (MAX_NB_OBJECTS_HUD, in its order), then any other GameObject
    subclass its RAM module defines and may emit (e.g. BattleZone's Red_Thing), sorted.
    """
    declared = list(get_max_objects(game.ocatari_name, True))
    module = _ocatari_module(game)
    defined = sorted(
        name for name, value in vars(module).items()
        if inspect.isclass(value) and issubclass(value, GameObject)
        and value.__module__ == module.__name__ and name not in declared
    )
    return tuple(declared + defined)


def static_class_names(game: Game) -> frozenset:
    """Classes of `game` marked is_static (do not move on screen: background, level layout)."""
    return frozenset(
        n for n in object_class_names(game)
        if n in STATIC_CLASSES or n in EXTRA_STATIC_CLASSES.get(game.name, frozenset())
    )


def hud_class_names(game: Game) -> frozenset:
    """Classes of `game` always marked is_hud (besides objects OCAtari itself flags as HUD)."""
    return frozenset(
        n for n in object_class_names(game)
        if n in HUD_CLASSES or n.endswith("_HUD") or n in EXTRA_HUD_CLASSES.get(game.name, frozenset())
    )


@dataclasses.dataclass(frozen=True)
class FrameObjects:
    """The objects of one frame, as stored in the dataset.

    Attributes:
      bbox: float32 [N, 4], (ymin, xmin, ymax, xmax) normalised to [0, 1] (x by 160, y by 210).
      label: int64 [N], index into object_class_names(game).
      is_hud: bool [N], score / lives / other display.
      is_static: bool [N], background or level layout (STATIC_CLASSES).
      player_center: (x, y) native pixels of the first "Player" object, or None.
      centers: class name -> (x, y) native pixels of the first object of that class on screen.
    """

    bbox: np.ndarray
    label: np.ndarray
    is_hud: np.ndarray
    is_static: np.ndarray
    player_center: Optional[tuple[float, float]] = None
    centers: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)

    def center_of(self, class_name: str) -> Optional[tuple[float, float]]:
        """(x, y) native pixels of the first object of `class_name` on screen, or None."""
        return self.centers.get(class_name)

    def to_feature_dict(self) -> dict:
        return {"bbox": self.bbox, "label": self.label, "is_hud": self.is_hud,
                "is_static": self.is_static}


def normalise_box(x: float, y: float, w: float, h: float) -> Optional[tuple[float, float, float, float]]:
    """Native (x, y, w, h) in the 160x210 screen -> clipped (ymin, xmin, ymax, xmax) in [0, 1].

    Returns None when nothing of the box is left on the screen.
    """
    xmin = min(max(x / frames.NATIVE_WIDTH, 0.0), 1.0)
    xmax = min(max((x + w) / frames.NATIVE_WIDTH, 0.0), 1.0)
    ymin = min(max(y / frames.NATIVE_HEIGHT, 0.0), 1.0)
    ymax = min(max((y + h) / frames.NATIVE_HEIGHT, 0.0), 1.0)
    if xmax <= xmin or ymax <= ymin:
        return None
    return ymin, xmin, ymax, xmax


class ObjectDetector:
    """Tracks OCAtari's RAM objects through one contiguous stretch of play (one episode).

    Call `reset()` whenever play jumps (new game or restored state), then `detect(ram)` after
    every agent step.
    """

    def __init__(self, game: Game):
        self.game = game
        self.hud = game.name not in NO_HUD_GAMES
        self.class_names = object_class_names(game)
        self._label = {name: i for i, name in enumerate(self.class_names)}
        self._static = static_class_names(game)
        self._hud_classes = hud_class_names(game)
        self._objects = []
        self.reset()

    def reset(self) -> None:
        self._objects = init_objects(self.game.ocatari_name, self.hud)

    def detect(self, ram: np.ndarray) -> FrameObjects:
        """Objects after the emulator frame whose RAM is `ram` (uint8 [128])."""
        with np.errstate(over="ignore"):  # Enduro's extractor negates a uint8 on purpose
            detect_objects_ram(self._objects, ram, self.game.ocatari_name, self.hud)
        boxes, labels, huds, statics = [], [], [], []
        centers: dict[str, tuple[float, float]] = {}
        for obj in self._objects:
            if not obj or not getattr(obj, "_visible", True):
                continue
            category = obj.category
            if category not in self._label:
                raise KeyError(
                    f"OCAtari emitted an unknown {self.game.ocatari_name} object category "
                    f"{category!r}; known: {self.class_names}. Update object_class_names."
                )
            x, y, w, h = (float(v) for v in obj.xywh)
            box = normalise_box(x, y, w, h)
            if box is None:
                continue
            centers.setdefault(category, (x + w / 2, y + h / 2))
            boxes.append(box)
            labels.append(self._label[category])
            huds.append(bool(obj.hud) or category in self._hud_classes)
            statics.append(category in self._static)
        return FrameObjects(
            bbox=np.asarray(boxes, np.float32).reshape(-1, 4),
            label=np.asarray(labels, np.int64),
            is_hud=np.asarray(huds, bool),
            is_static=np.asarray(statics, bool),
            player_center=centers.get("Player"),
            centers=centers,
        )
