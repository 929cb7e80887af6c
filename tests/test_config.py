"""permakey_tf.config: retired model fields, the Transporter config's checks and its restart step."""

from __future__ import annotations

import json

import pytest

from permakey_tf.config import TransporterConfig
from permakey_tf.training import run_config, run_flags, runs

from tiny_transporter import TINY


def test_a_retired_model_field_is_read_at_its_fixed_value_and_refused_otherwise(tmp_path):
    """Runs saved before the finished experiments left PermaKeyConfig still load when they used
    the value the code now always has; a run that used another value is refused by name."""
    from permakey_tf.config import RETIRED_FIELDS

    config = run_flags.resolve_config({"preset": "smoke", "logdir": str(tmp_path), "name": "old"})
    run_dir = runs.create_run_dir(config)
    saved = json.loads((run_dir / runs.CONFIG_FILE).read_text())
    saved["model_config"].update(RETIRED_FIELDS)
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps(saved))
    assert runs.load_config(run_dir) == config
    saved["model_config"]["gaussian_combination"] = "max"
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps(saved))
    with pytest.raises((run_config.ConfigError, ValueError), match="gaussian_combination='max' was a finished experiment"):
        runs.load_config(run_dir)
    with pytest.raises(run_config.ConfigError, match="lsp_border"):
        run_flags.resolve_config({"preset": "smoke", "model_options": ["lsp_border=replicate"]})


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(decoder_output="tanh"), "decoder_output"),
        (dict(norm="group"), "norm"),
        (dict(lr_schedule="cosine"), "lr_schedule"),
        (dict(decoder_upsample_after=()), "upsamplings"),
        (dict(decoder_upsample_after=(7,)), "do not exist"),
        (dict(image_size=85), "divisible"),
        (dict(num_keypoints=0), "num_keypoints"),
    ],
)
def test_config_rejects_bad_values(changes, message):
    with pytest.raises(ValueError, match=message):
        TransporterConfig(**changes)


def test_keypointer_restart_step_is_the_models_restart_step():
    assert TransporterConfig().keypoint_network_restart_step == 0
    assert TINY.replace(keypointer_restart_step=840).keypoint_network_restart_step == 840
    with pytest.raises(ValueError, match="keypointer_restart_step must be >= 0"):
        TINY.replace(keypointer_restart_step=-1)
