"""train.py's flags and presets, turned into a :class:`permakey_tf.training.run_config.RunConfig`.

Values are resolved in three layers, later ones winning:

  1. the paper's settings (docs/BACKGROUND.md section 5; the config dataclasses' defaults),
  2. a preset (``paper`` = nothing changed, ``quick``, ``smoke``),
  3. the flags the user passed explicitly.

:data:`FLAG_FIELDS` says where each flag lands in the config; :func:`resolve_config` applies the
flags through it and :func:`resume_config` compares them with a saved run through it, so a new
flag is added in one table. Every failure is a ConfigError whose message names the fix. Nothing
here imports TensorFlow, so that ``train.py`` rejects bad flags before any heavy work.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Mapping, Optional

from permakey_tf.config import NOISE_MODES
from permakey_tf.models.registry import get_model_spec
from permakey_tf.training.run_config import ConfigError, DataSettings, RunConfig, TrainConfig, model_config_class
from permakey_tf.training.runs import load_config
from tfds_atari.frames import FRAME_SIZE
from tfds_atari.games import GAMES, UnknownGameError, get_game

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
DISTRIBUTE_MODES = ("none", "mirrored", "multiworker")
PRESETS = ("paper", "quick", "smoke")


@dataclasses.dataclass(frozen=True)
class Preset:
    """Changes a preset makes on top of the paper's settings (flags still win)."""

    description: str
    train: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    data: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    models: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)  # per model
    batch_size: Mapping[str, int] = dataclasses.field(default_factory=dict)
    epochs: Mapping[str, int] = dataclasses.field(default_factory=dict)  # per model, over train
    pairs: Optional[Mapping[str, Any]] = None


PRESET_TABLE: dict[str, Preset] = {
    "paper": Preset(
        description="the paper's experiment: 85k/5k/5k frames, batch 32 (Transporter 64), "
        "up to 100 epochs, early stopping, layers (0, 1), float32",
    ),
    # Sized for the README's 12-minute main job on a 2-core CPU (timings per machine kind in
    # docs/TRAINING.md).
    "quick": Preset(
        description="9-14 minutes on an idle 2-core CPU: 6,000 training frames, batch 16, "
        "6 epochs (2,250 steps), precision auto; PermaKey with encoder widths (16, 32, 32, 64), "
        "layer 0 only, LSPN widths (64, 32, 32), Adam 1e-3, a fresh PointNet at step 1,125 and "
        "a final PointNet phase of 600 steps; Transporter batch 16, 10 epochs (1,680 steps)",
        train={"epochs": 6, "precision": "auto", "image_frames": 8, "quality_frames": 128,
               "statistics_batches": 32},
        data={"train_frames": 6_000, "validation_frames": 256, "test_frames": 512},
        batch_size={"permakey": 16, "transporter": 16},
        # Transporter's pairs give 168 steps per epoch; at 6 epochs its keypoints had only begun
        # to track on Pong's validation frames (docs/notes/transporter-diagnosis.md).
        epochs={"transporter": 10},
        models={
            "permakey": {
                "encoder_filters": (16, 32, 32, 64),
                "lsp_layers": (0,),
                "patch_size": 2,
                "lsp_hidden_widths": (64, 32, 32),
                "learning_rate": 1e-3,
                # Half-way (6 epochs x 375 steps), a fresh PointNet on the trained error maps
                # (why: docs/notes/one-seed-results.md, "The keypoint bottleneck").
                "pointnet_restart_step": 1125,
                # After the last epoch, a PointNet refitted on the kept checkpoint's error maps,
                # kept if it beats the joint one (docs/TRAINING.md, "The final PointNet phase").
                "pointnet_final_steps": 600,
            },
            "transporter": {"learning_rate": 1e-3},
        },
    ),
    "smoke": Preset(
        description="seconds, for tests: 64/16/16 frames, batch 8, 2 epochs, tiny networks",
        train={"epochs": 2, "image_frames": 4},
        data={"train_frames": 64, "validation_frames": 16, "test_frames": 16},
        batch_size={"permakey": 8, "transporter": 8},
        models={
            "permakey": {
                "encoder_filters": (8, 8, 8, 8),
                "latent_dim": 4,
                "lsp_layers": (0,),
                "lsp_hidden_widths": (16, 8),
                "num_keypoints": 4,
                "learning_rate": 1e-3,
            },
            "transporter": {"encoder_filters": (4, 4, 8, 8), "decoder_filters": (8, 8, 8, 8),
                            "num_keypoints": 4, "learning_rate": 1e-3},
        },
        # 64 frames hold no complete 100-frame window: pair frames 4 steps apart instead.
        pairs={"sampling": "gap", "gap": 4},
    ),
}


# Where each of train.py's config flags lands: (part of the RunConfig, field), the part being
# "run" (RunConfig's own fields), "data", "train" or "model_config". resolve_config applies the
# flags through this table and resume_config compares them with a saved run through it.
FLAG_FIELDS: dict[str, tuple[str, str]] = {
    "game": ("run", "game"),
    "model": ("run", "model"),
    "seed": ("run", "seed"),
    "preset": ("run", "preset"),
    "noise": ("data", "noise"),
    "train_frames": ("data", "train_frames"),
    "data_dir": ("data", "data_dir"),
    "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"),
    "precision": ("train", "precision"),
    "jit": ("train", "jit"),
    "distribute": ("train", "distribute"),
    "logdir": ("train", "logdir"),
    "name": ("train", "name"),
    "num_keypoints": ("model_config", "num_keypoints"),
    "layers": ("model_config", "lsp_layers"),
    "patch_size": ("model_config", "patch_size"),
}
# --set FIELD=VALUE: any field of the model's config dataclass (parse_model_options).
MODEL_OPTIONS_FLAG = "model_options"
# Flags --resume accepts with values other than the run's: they do not change what is computed.
CHANGEABLE_ON_RESUME = ("epochs", "jit", "distribute")
# Flags that find a run folder rather than describe its config.
LOCATING_FLAGS = ("logdir", "name")


def _flags_of_part(flags: Mapping[str, Any], part: str) -> dict:
    """{field: value} of the given flags that land in ``part`` of the RunConfig."""
    return {FLAG_FIELDS[k][1]: v for k, v in flags.items() if k in FLAG_FIELDS and FLAG_FIELDS[k][0] == part}


def parse_layers(text: str) -> tuple[int, ...]:
    """"0,1" -> (0, 1); raises ConfigError naming the problem."""
    try:
        layers = tuple(int(part) for part in str(text).replace(" ", "").split(",") if part != "")
    except ValueError:
        raise ConfigError(
            f"--layers {text!r} is not a comma-separated list of encoder layer indices, e.g. 0,1"
        ) from None
    if not layers:
        raise ConfigError("--layers needs at least one encoder layer index, e.g. 0 or 0,1")
    return layers


def parse_model_options(config_cls, options) -> dict:
    """``["field=value", ...]`` (train.py's --set) -> ``{field: value}`` typed by the config
    dataclass' type hints (int, float, bool, str, ``tuple[int, ...]`` as a comma-separated list,
    ``Optional[...]`` also "none"). Raises ConfigError naming an unknown field or a value that
    does not parse."""
    fields = {f.name for f in dataclasses.fields(config_cls)}
    hints = typing.get_type_hints(config_cls)
    changes = {}
    for option in options:
        name, sep, text = str(option).partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in fields:
            raise ConfigError(
                f"--set {option!r}: expected FIELD=VALUE with FIELD one of {config_cls.__name__}'s "
                f"fields: {', '.join(sorted(fields))}"
            )
        changes[name] = _parse_value(name, text.strip(), hints[name])
    return changes


_BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_KIND = {bool: "true or false", int: "an integer", float: "a number", str: "a word"}
_KINDS = {bool: "true/false values", int: "integers", float: "numbers", str: "words"}


def _parse_value(name: str, text: str, hint: Any) -> Any:
    """``text`` as a value of the type ``hint`` (a resolved type hint of a config field)."""
    def fail(kind):
        raise ConfigError(f"--set {name}={text!r}: {name} takes {kind}")

    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Union and type(None) in args:  # Optional[X]
        if text.lower() == "none":
            return None
        (hint,) = [a for a in args if a is not type(None)]
        args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        element = args[0]
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            return tuple(_parse_scalar(p, element) for p in parts)
        except ValueError:
            fail(f"a comma-separated list of {_KINDS[element]}")
    try:
        return _parse_scalar(text, hint)
    except ValueError:
        fail(_KIND.get(hint, str(hint)))


def _parse_scalar(text: str, kind: type) -> Any:
    """One bool, int, float or str from its text; ValueError when it does not parse."""
    if kind is bool:
        if text.lower() not in _BOOL_WORDS:
            raise ValueError(text)
        return _BOOL_WORDS[text.lower()]
    if kind in (int, float, str):
        return kind(text)
    raise ValueError(f"no parser for {kind}")


def resolve_config(flags: Mapping[str, Any]) -> RunConfig:
    """Builds the RunConfig from explicitly given flags (None = not given).

    ``flags`` keys are train.py's argparse destinations: game, model, noise, num_keypoints, layers,
    epochs, batch_size, train_frames, seed, data_dir, logdir, name, precision, jit, distribute,
    preset. Raises ConfigError (with the fix in the message) for anything that cannot work.
    """
    flags = {k: v for k, v in flags.items() if v is not None}
    preset_name = flags.get("preset", "paper")
    if preset_name not in PRESET_TABLE:
        raise ConfigError(f"Unknown preset {preset_name!r}; choose one of {', '.join(PRESETS)}")
    preset = PRESET_TABLE[preset_name]
    model = flags.get("model", "permakey")
    model_cls = model_config_class(model)
    spec = get_model_spec(model)

    try:
        game = get_game(flags.get("game", DataSettings.game)).name
    except UnknownGameError as error:
        raise ConfigError(str(error)) from None

    data_values = dict(preset.data)
    data_values.update(_flags_of_part(flags, "data"))
    data_values["game"] = game
    if spec.examples == "pairs" and preset.pairs is not None:
        data_values["pairs"] = dict(preset.pairs)
    data = DataSettings(**data_values)
    _check_choice("--noise", data.noise, NOISE_MODES)
    for field in ("train_frames", "validation_frames", "test_frames"):
        if getattr(data, field) < 1:
            raise ConfigError(f"{field} must be >= 1, got {getattr(data, field)}")

    train_values = dict(preset.train)
    train_values["batch_size"] = preset.batch_size.get(model, spec.paper_batch_size)
    if model in preset.epochs:
        train_values["epochs"] = preset.epochs[model]
    train_values["early_stopping_patience"] = spec.paper_patience
    train_values.update(_flags_of_part(flags, "train"))
    train = TrainConfig(**train_values)
    _check_choice("--precision", train.precision, PRECISIONS)
    _check_choice("--distribute", train.distribute, DISTRIBUTE_MODES)
    if train.epochs < 1:
        raise ConfigError(f"--epochs must be >= 1, got {train.epochs}")
    if train.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {train.batch_size}")
    if train.batch_size > data.train_frames:
        raise ConfigError(
            f"--batch-size {train.batch_size} is larger than the {data.train_frames} training "
            "frames: lower --batch-size or raise --train-frames"
        )
    if train.name is not None and (not train.name or "/" in train.name or train.name in (".", "..")):
        raise ConfigError(f"--name {train.name!r} must be a plain folder name (no '/')")
    if train.distribute == "multiworker" and train.precision == "auto":
        raise ConfigError(
            "--precision auto is measured by each process and workers could choose differently: "
            "pass --precision float32 or mixed_bfloat16 with --distribute multiworker"
        )
    if train.distribute == "multiworker" and train.name is None:
        raise ConfigError(
            "--distribute multiworker needs --name: every worker must write to the same run "
            "folder name, and a timestamp would differ between workers"
        )

    model_changes = dict(preset.models.get(model, {}))
    if "num_keypoints" in flags:
        model_changes["num_keypoints"] = int(flags["num_keypoints"])
    if "layers" in flags:
        if not spec.has_field("lsp_layers"):
            raise ConfigError(f"--layers selects PermaKey's encoder layers; {spec.title} has none")
        layers = flags["layers"]
        model_changes["lsp_layers"] = parse_layers(layers) if isinstance(layers, str) else tuple(layers)
    if flags.get("patch_size") is not None:
        if not spec.has_field("patch_size"):
            raise ConfigError(f"--patch-size sets PermaKey's local prediction cells; {spec.title} has none")
        if int(flags["patch_size"]) < 1:
            raise ConfigError(f"--patch-size must be >= 1, got {flags['patch_size']}")
        model_changes["patch_size"] = int(flags["patch_size"])
    model_changes.update(parse_model_options(model_cls, flags.get("model_options") or ()))
    try:
        model_config = model_cls.for_game(game, **model_changes)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"Invalid {model} configuration: {error}") from None
    if model_config.image_size != FRAME_SIZE:
        raise ConfigError(f"image_size {model_config.image_size} does not fit the data: atari_frames "
                          f"holds {FRAME_SIZE}x{FRAME_SIZE} frames; leave image_size at {FRAME_SIZE}")

    seed = int(flags.get("seed", 0))
    return RunConfig(
        model=model,
        game=game,
        seed=seed,
        preset=preset_name,
        model_config=model_config,
        data=data,
        train=train,
    )


def _check_choice(flag: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{flag} {value!r} is not one of: {', '.join(choices)}")


def valid_games() -> list[str]:
    return sorted(GAMES)


def resume_config(run_dir: Path, flags: Mapping[str, Any]) -> RunConfig:
    """The saved config of ``run_dir``; --epochs, --jit and --distribute may change (they do not
    change the computation), every other flag given must agree with the run (ConfigError lists
    the conflicts). ``flags`` as for :func:`resolve_config` (None = not given)."""
    saved = load_config(run_dir)
    flags = {k: v for k, v in flags.items() if v is not None}
    conflicts = []
    for key, value in flags.items():
        if key == MODEL_OPTIONS_FLAG:
            changes = parse_model_options(type(saved.model_config), value)
            conflicts += [f"--set {field}={v!r} (the run has {getattr(saved.model_config, field)!r})"
                          for field, v in changes.items() if getattr(saved.model_config, field) != v]
            continue
        if key not in FLAG_FIELDS:
            raise ValueError(f"flag {key!r} is not in run_flags.FLAG_FIELDS: add where it lands")
        if key in CHANGEABLE_ON_RESUME or key in LOCATING_FLAGS:
            continue
        part, field = FLAG_FIELDS[key]
        holder = saved if part == "run" else getattr(saved, part)
        flag = f"--{key.replace('_', '-')}"
        if not hasattr(holder, field):
            conflicts.append(f"{flag} {value!r} (a {saved.model} run has no {field})")
            continue
        value = _canonical_flag_value(key, value)
        if getattr(holder, field) != value:
            conflicts.append(f"{flag} {value!r} (the run has {getattr(holder, field)!r})")
    if conflicts:
        raise ConfigError(
            f"--resume continues {run_dir} with its saved config.json; these flags conflict with "
            f"it: {'; '.join(conflicts)}. Drop them, or start a new run."
        )
    if "epochs" in flags and int(flags["epochs"]) < 1:
        raise ConfigError(f"--epochs must be >= 1, got {flags['epochs']}")
    changes = {FLAG_FIELDS[k][1]: flags[k] for k in CHANGEABLE_ON_RESUME if k in flags}
    if "epochs" in changes:
        changes["epochs"] = int(changes["epochs"])
    saved = dataclasses.replace(saved, train=dataclasses.replace(saved.train, **changes))
    _check_choice("--distribute", saved.train.distribute, DISTRIBUTE_MODES)
    return saved


def _canonical_flag_value(key: str, value: Any) -> Any:
    """A flag's value as the config holds it (a game's canonical name, layers as a tuple)."""
    if key == "game":
        try:
            return get_game(value).name
        except UnknownGameError as error:
            raise ConfigError(str(error)) from None
    if key == "layers":
        return parse_layers(value) if isinstance(value, str) else tuple(value)
    return value
