"""permakey_tf.registry is the one table of models, and permakey_tf.schedules the one schedule."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from permakey_tf import registry, run_flags, run_config
from permakey_tf.registry import MODEL_SPECS, ModelSpec, UnknownModelError, get_model_spec


def test_each_spec_names_its_config_and_model_class():
    import keras

    for name, spec in MODEL_SPECS.items():
        assert spec.name == name
        cls = spec.model_class
        assert issubclass(cls, keras.Model) and cls.__name__ == spec.title
        assert spec.examples in ("frames", "pairs")
        assert spec.has_field("num_keypoints") and not spec.has_field("no_such_field")
    assert get_model_spec("permakey").has_field("lsp_layers")
    assert not get_model_spec("transporter").has_field("lsp_layers")


def test_unknown_model_names_the_valid_ones():
    with pytest.raises(UnknownModelError, match="permakey, transporter"):
        get_model_spec("permakee")
    with pytest.raises(run_config.ConfigError, match="Unknown model 'permakee'"):
        run_flags.resolve_config({"model": "permakee"})


def test_importing_the_registry_does_not_load_tensorflow():
    code = "import sys, permakey_tf.registry, permakey_tf.run_flags; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_run_settings_come_from_the_spec(monkeypatch):
    """A model added to the table alone gets its batch size, patience and flag checks: nothing
    else in the training configuration branches on a model's name."""
    extra = ModelSpec(name="permakey_wide", title="PermaKey", config_class=MODEL_SPECS["permakey"].config_class,
                      model_path="permakey_tf.permakey:PermaKey", examples="frames",
                      paper_batch_size=48, paper_patience=3, has_error_maps=True)
    monkeypatch.setitem(registry.MODEL_SPECS, extra.name, extra)
    config = run_flags.resolve_config({"model": "permakey_wide", "layers": "0"})
    assert (config.train.batch_size, config.train.early_stopping_patience) == (48, 3)
    assert config.model_config.lsp_layers == (0,)
    # Transporter has no encoder layers to choose: the check reads the config's fields.
    with pytest.raises(run_config.ConfigError, match="Transporter has none"):
        run_flags.resolve_config({"model": "transporter", "layers": "0"})


@pytest.mark.parametrize("model", sorted(MODEL_SPECS))
def test_paper_schedule_is_a_staircase_and_reference_an_inverse_time_decay(model):
    spec = get_model_spec(model)
    base = spec.config_class()
    rate, steps, decay = base.learning_rate, base.lr_decay_steps, base.lr_decay_rate
    for schedule in ("paper", "reference"):
        config = dataclasses.replace(base, lr_schedule=schedule)
        if model == "permakey":
            optimizer = spec.model_class(config).default_optimizer("vae")
        else:
            from permakey_tf.transporter import paper_optimizer

            optimizer = paper_optimizer(config)
        lr = optimizer._learning_rate  # the schedule (learning_rate is its current value)
        at = {s: float(np.asarray(lr(s))) for s in (0, steps - 1, steps, 2 * steps + 1)}
        if schedule == "paper":
            assert at[0] == pytest.approx(rate) and at[steps - 1] == pytest.approx(rate)
            assert at[steps] == pytest.approx(rate * decay)
            assert at[2 * steps + 1] == pytest.approx(rate * decay**2)
        else:  # rate / (1 + decay * t); PermaKey's t counts its single optimizer's steps, unfloored
            from permakey_tf.permakey import REFERENCE_OPTIMIZER_STEPS_PER_BATCH as per_batch

            t = {s: (per_batch * s / steps if model == "permakey" else s // steps) for s in at}
            for s, value in at.items():
                assert value == pytest.approx(rate / (1 + decay * t[s]), rel=1e-5), (schedule, s)
