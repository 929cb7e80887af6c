"""The paper's seed and ablation scripts (experiments/*.sh) in dry-run mode: each setting they
would train resolves to a valid configuration that differs from the others in the field the
ablation is about, and the ablation figure is drawn from exactly the runs the settings train."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from permakey_tf.training.run_flags import resolve_config

ROOT = Path(__file__).resolve().parents[1]


def dry_run(script: str, **environment) -> list[list[str]]:
    """The commands ``experiments/<script>`` prints with DRY_RUN=1, split into words."""
    env = {**os.environ, "DRY_RUN": "1", "PYTHON": sys.executable, "REPORTS": "reports", **environment}
    result = subprocess.run(["bash", str(ROOT / "experiments" / script)], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=True)
    return [shlex.split(line[2:]) for line in result.stdout.splitlines() if line.startswith("+ ")]


def option_values(words: list[str], option: str) -> list[str]:
    return [words[i + 1] for i, word in enumerate(words[:-1]) if word == option]


def resolved_model(words: list[str]):
    """The PermaKey config an over_seeds.py command's train.py would build."""
    (game,) = option_values(words, "--game")
    (preset,) = option_values(words, "--preset")
    return resolve_config({"game": game, "model": "permakey", "preset": preset,
                           "model_options": option_values(words, "--set")}).model_config


@pytest.mark.parametrize("script, field, expected", [
    ("ablation_keypoints.sh", "num_keypoints", [15, 20, 25]),
    ("ablation_layers.sh", "lsp_layers", [(0,), (0, 1), (2, 3), (0, 1, 2, 3)]),
    ("ablation_kernel_size.sh", "encoder_kernels", [(3, 3, 3, 3), (4, 3, 3, 3), (6, 3, 3, 3), (4, 3, 3, 3)]),
])
def test_each_ablation_setting_is_a_valid_config_that_varies_its_field(script, field, expected):
    commands = dry_run(script)
    settings = [words for words in commands if "experiments/over_seeds.py" in words]
    assert [getattr(resolved_model(words), field) for words in settings] == expected
    tags = [option_values(words, "--tag")[0] for words in settings]
    assert len(set(tags)) == len(tags)  # every setting has its own run and report folders
    assert all(option_values(words, "--seeds") == ["0"] for words in settings)  # "0 1": two words
    assert all(words[words.index("--seeds") + 2] == "1" for words in settings)
    (figure,) = [words for words in commands if "evaluate.py" in words]
    runs = [word for word in figure if "_none_seed" in word]
    assert runs == [f"runs/experiments/{option_values(words, '--game')[0]}/permakey/quick-{tag}_none_seed{seed}"
                    for words, tag in zip(settings, tags) for seed in (0, 1)]
    assert option_values(figure, "--out")[0].startswith("reports/")


def test_the_stride_two_setting_changes_the_first_stride_only():
    commands = [w for w in dry_run("ablation_kernel_size.sh") if "experiments/over_seeds.py" in w]
    strides = [resolved_model(words).encoder_strides for words in commands]
    assert strides == [(1, 2, 2, 1)] * 3 + [(2, 2, 2, 1)]


def test_kernel_four_is_the_layer_ablations_quick_preset_setting_trained_once():
    kernel = [w for w in dry_run("ablation_kernel_size.sh") if "experiments/over_seeds.py" in w]
    layers = [w for w in dry_run("ablation_layers.sh") if "experiments/over_seeds.py" in w]
    assert resolved_model(kernel[1]) == resolved_model(layers[0])  # the quick preset itself
    assert kernel[1] == layers[0]  # the same command: same runs and reports, skipped once done


def test_the_seed_study_trains_five_enduro_seeds_into_one_setting():
    (command,) = dry_run("seeds.sh")
    assert option_values(command, "--game") == ["enduro"]
    assert command[command.index("--seeds") + 1:command.index("--seeds") + 6] == ["0", "1", "2", "3", "4"]
    assert resolved_model(command).num_keypoints == 10  # Enduro's K, the authors'


def test_the_ram_probes_are_skipped_unless_asked_for():
    for script in ("seeds.sh", "ablation_keypoints.sh"):
        studies = [w for w in dry_run(script) if "experiments/over_seeds.py" in w]
        assert studies and all("--no-probe" in words for words in studies)
        asked = [w for w in dry_run(script, PROBE="1") if "experiments/over_seeds.py" in w]
        assert asked and not any("--no-probe" in words for words in asked)
