"""permakey_tf.models.registry is the one table of models (their learning-rate schedules:
tests/test_schedules.py)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from permakey_tf.models import registry
from permakey_tf.training import run_flags, run_config
from permakey_tf.models.registry import MODEL_SPECS, ModelSpec, UnknownModelError, get_model_spec


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
    code = "import sys, permakey_tf.models.registry, permakey_tf.training.run_flags; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_run_settings_come_from_the_spec(monkeypatch):
    """A model added to the table alone gets its batch size, patience and flag checks: nothing
    else in the training configuration branches on a model's name."""
    extra = ModelSpec(name="permakey_wide", title="PermaKey", config_class=MODEL_SPECS["permakey"].config_class,
                      model_path="permakey_tf.models.permakey:PermaKey", examples="frames",
                      paper_batch_size=48, paper_patience=3, has_error_maps=True)
    monkeypatch.setitem(registry.MODEL_SPECS, extra.name, extra)
    config = run_flags.resolve_config({"model": "permakey_wide", "layers": "0"})
    assert (config.train.batch_size, config.train.early_stopping_patience) == (48, 3)
    assert config.model_config.lsp_layers == (0,)
    # Transporter has no encoder layers to choose: the check reads the config's fields.
    with pytest.raises(run_config.ConfigError, match="Transporter has none"):
        run_flags.resolve_config({"model": "transporter", "layers": "0"})


# Small configs of every registered model (a new model adds its own here).
CONTRACT_CONFIGS = {
    "permakey": dict(encoder_filters=(4, 8, 8, 8), latent_dim=4, lsp_hidden_widths=(16, 8), num_keypoints=3),
    "transporter": dict(image_size=16, encoder_filters=(4, 4, 8, 8), decoder_filters=(8, 8, 8, 8),
                        num_keypoints=2),
}


def test_every_model_has_small_contract_settings():
    assert set(CONTRACT_CONFIGS) == set(MODEL_SPECS)


@pytest.mark.parametrize("name", sorted(MODEL_SPECS))
def test_every_model_keeps_the_keypoint_model_contract(name):
    """What training, evaluation, export and the probes call, on every registered model: the
    base class, the keypoint outputs, an empty batch, the window features, the statistics pass,
    the named optimizers and a config round trip that rebuilds the same model."""
    import keras

    from permakey_tf.models.keypoint_model import KeypointModel

    spec = get_model_spec(name)
    config = spec.config_class(**CONTRACT_CONFIGS[name])
    assert issubclass(spec.model_class, KeypointModel) and spec.model_class.config_class is spec.config_class
    for method in ("predict_keypoints", "window_feature_maps", "statistics_pass"):
        assert getattr(spec.model_class, method) is not getattr(KeypointModel, method), method
    keras.utils.set_random_seed(0)
    model = spec.model_class(config)
    size, k = config.image_size, config.num_keypoints
    frames = np.random.default_rng(0).integers(0, 256, (2, size, size, 3), dtype=np.uint8)
    outputs = model.predict_keypoints(frames)
    assert tuple(outputs["keypoints"].shape) == (2, k, 2)
    pixels = np.asarray(outputs["keypoints_pixels"])
    assert tuple(outputs["gaussian_maps"].shape) == (2, size, size, k)
    assert np.all((pixels >= 0) & (pixels <= size)), "keypoint pixels lie inside the frame"

    empty = model(frames[:0], training=False)
    assert set(empty) >= {"keypoints", "keypoints_pixels", "heatmaps", "gaussian_maps"}
    for key, value in empty.items():
        assert value.shape[0] == 0 and tuple(value.shape[1:]) == tuple(model(frames, training=False)[key].shape[1:])
        assert np.all(np.isfinite(np.asarray(value)))

    maps = model.window_feature_maps(frames)
    assert maps and all(m.shape[0] == 2 and m.dtype == "float32" for m in maps)

    batch = frames if spec.examples == "frames" else (frames, frames[::-1])
    before = [np.array(v) for v in model.non_trainable_variables]
    weights = [np.array(v) for v in model.trainable_variables]
    model.statistics_pass(batch)
    after = [np.array(v) for v in model.non_trainable_variables]
    assert any(not np.allclose(a, b) for a, b in zip(before, after)), "BatchNorm statistics move"
    assert all(np.array_equal(w, np.array(v)) for w, v in zip(weights, model.trainable_variables))

    model.compile()
    assert model.named_optimizers() and all(isinstance(o, keras.optimizers.Optimizer)
                                           for o in model.named_optimizers().values())

    rebuilt = spec.model_class.from_config(model.get_config())
    assert rebuilt.config == model.config and rebuilt.name == model.name
    rebuilt(frames, training=False)
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_allclose(rebuilt.predict_keypoints(frames)["keypoints"],
                               model.predict_keypoints(frames)["keypoints"], atol=1e-6)
    with pytest.raises(TypeError, match=spec.config_class.__name__):
        spec.model_class(object())
