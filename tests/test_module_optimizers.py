"""permakey_tf.models.module_optimizers on PermaKey: one optimizer per module, trained, saved, loss-scaled."""

import keras
import numpy as np
import pytest

from permakey_tf.models.permakey import PermaKey

from tiny_permakey import LOSSES, TINY, permakey_frames, permakey_model


def test_default_optimizers_follow_the_paper_schedule():
    model = permakey_model()
    model.compile()
    optimizers = [model.vae_optimizer, model.lsp_optimizer, model.pointnet_optimizer]
    assert len({id(o) for o in optimizers}) == 3 and model.optimizer is model.vae_optimizer
    schedule = model.vae_optimizer._learning_rate
    assert float(schedule(9_999)) == pytest.approx(2e-4)
    assert float(schedule(10_000)) == pytest.approx(2e-4 * 0.85)
    assert float(schedule(25_000)) == pytest.approx(2e-4 * 0.85**2)
    reference = PermaKey(TINY.replace(lr_schedule="reference")).default_optimizer("x")._learning_rate
    assert isinstance(reference, keras.optimizers.schedules.InverseTimeDecay)
    assert float(reference(0)) == pytest.approx(2e-4) and float(reference(10_000)) < 2e-4 * 0.85


def test_each_optimizer_updates_only_its_module():
    model = permakey_model()
    model.compile(
        keras.optimizers.SGD(0.0), keras.optimizers.SGD(0.0), keras.optimizers.Adam(1e-2)
    )
    variables = model.module_variables()
    before = {m: [v.numpy().copy() for v in vs] for m, vs in variables.items()}
    model.train_on_batch(permakey_frames())
    for module, values in before.items():
        changed = [not np.array_equal(b, v.numpy()) for b, v in zip(values, variables[module])]
        assert all(changed) if module == "pointnet" else not any(changed), module


def test_save_and_load_continue_training_identically(tmp_path):
    model = permakey_model()
    model.compile()
    model.train_on_batch(permakey_frames(2, 0))
    path = tmp_path / "permakey.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.config == model.config
    for module in ("vae", "lsp", "pointnet"):
        original = getattr(model, f"{module}_optimizer")
        restored = getattr(loaded, f"{module}_optimizer")
        assert int(restored.iterations) == int(original.iterations) == 1
        for a, b in zip(original.variables, restored.variables):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Two more steps: the second depends on the restored Adam moments.
    for seed in (1, 2):
        a = model.train_on_batch(permakey_frames(2, seed), return_dict=True)
        b = loaded.train_on_batch(permakey_frames(2, seed), return_dict=True)
        for name in LOSSES:
            assert a[name] == pytest.approx(b[name], rel=1e-5), name


def test_mixed_float16_uses_loss_scaling():
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = permakey_model()
    model.compile()
    assert isinstance(model.lsp_optimizer, keras.optimizers.LossScaleOptimizer)
    logs = model.train_on_batch(permakey_frames(), return_dict=True)
    assert all(np.isfinite(logs[name]) for name in LOSSES)
