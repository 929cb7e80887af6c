"""Tests for permakey_tf.models.transporter: the transport step, gradient stops, outputs, saving, options,
and a short learning run on synthetic moving-square pairs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from permakey_tf.models import ops
from permakey_tf.config import TransporterConfig
from permakey_tf.models.transporter import Transporter, transport_features

from tiny_transporter import TINY

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _frames(seed: int, n: int = 4, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _tiny_model(seed: int = 0, config: TransporterConfig = TINY) -> Transporter:
    keras.utils.set_random_seed(seed)
    model = Transporter(config)
    model(_frames(seed, 2, config.image_size))  # builds every weight
    return model


# ------------------------------------------------------------------------------ transport step
def _point_maps(points, size=9, sigma=0.05):
    """Gaussian maps [1, size, size, K] so narrow that they are 1 at the point, ~0 elsewhere."""
    keypoints = tf.constant([[[-1.0 + 2.0 * r / (size - 1), -1.0 + 2.0 * c / (size - 1)]
                              for r, c in points]], tf.float32)
    return ops.keypoints_to_gaussian_maps(keypoints, size, size, sigma)


def test_transport_removes_source_feature_and_pastes_target_feature():
    size = 9
    rng = np.random.default_rng(0)
    source = rng.uniform(1.0, 2.0, (1, size, size, 2)).astype(np.float32)
    target = rng.uniform(5.0, 6.0, (1, size, size, 2)).astype(np.float32)
    # Keypoint 0 moves from (2, 2) to (6, 5); keypoint 1 stays at (4, 7).
    source_maps = _point_maps([(2, 2), (4, 7)])
    target_maps = _point_maps([(6, 5), (4, 7)])
    out = transport_features(source, target, source_maps, target_maps).numpy()

    np.testing.assert_allclose(out[0, 2, 2], 0.0, atol=1e-6)  # source position: suppressed
    np.testing.assert_allclose(out[0, 6, 5], target[0, 6, 5], rtol=1e-6)  # target: pasted
    np.testing.assert_allclose(out[0, 4, 7], target[0, 4, 7], rtol=1e-6)  # static keypoint
    untouched = np.ones((size, size), bool)
    untouched[[2, 6, 4], [2, 5, 7]] = False
    np.testing.assert_allclose(out[0][untouched], source[0][untouched], rtol=1e-6)


def test_transport_applies_keypoints_in_order():
    # Keypoint 1's source position is keypoint 0's target: the feature pasted by k=0 is then
    # suppressed by k=1 (f <- (1 - m_src_1)(1 - m_tgt_1) f + m_tgt_1 f_tgt), as in the reference.
    source = np.ones((1, 9, 9, 1), np.float32)
    target = np.full((1, 9, 9, 1), 3.0, np.float32)
    out = transport_features(
        source, target, _point_maps([(1, 1), (5, 5)]), _point_maps([(5, 5), (7, 7)])
    ).numpy()
    np.testing.assert_allclose(out[0, 5, 5, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[0, 7, 7, 0], 3.0, rtol=1e-6)
    np.testing.assert_allclose(out[0, 1, 1, 0], 0.0, atol=1e-6)


def test_transport_rejects_maps_at_another_resolution():
    with pytest.raises(ValueError, match="same spatial size"):
        transport_features(
            tf.zeros([1, 8, 8, 2]), tf.zeros([1, 8, 8, 2]), tf.zeros([1, 16, 16, 1]),
            tf.zeros([1, 16, 16, 1]),
        )


def test_transport_gradients_stop_at_source_inputs():
    source = tf.Variable(tf.random.uniform([1, 9, 9, 2]))
    target = tf.Variable(tf.random.uniform([1, 9, 9, 2]))
    source_maps = tf.Variable(_point_maps([(2, 2)], sigma=0.3))
    target_maps = tf.Variable(_point_maps([(6, 6)], sigma=0.3))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(transport_features(source, target, source_maps, target_maps) ** 2)
    grads = tape.gradient(loss, [source, source_maps, target, target_maps])
    assert grads[0] is None and grads[1] is None
    assert float(tf.reduce_max(tf.abs(grads[2]))) > 0
    assert float(tf.reduce_max(tf.abs(grads[3]))) > 0


# ----------------------------------------------------------------------------------- the model
def test_model_loss_gradient_reaches_target_frame_only():
    model = _tiny_model()
    source = tf.Variable(tf.random.uniform([2, 16, 16, 3]))
    target = tf.Variable(tf.random.uniform([2, 16, 16, 3]))
    with tf.GradientTape() as tape:
        outputs = model.transport_images(source, target, training=True)
        loss = tf.reduce_mean((target - outputs["reconstruction"]) ** 2)
    grad_source, grad_target = tape.gradient(loss, [source, target])
    assert grad_source is None or float(tf.reduce_max(tf.abs(grad_source))) == 0.0
    assert float(tf.reduce_max(tf.abs(grad_target))) > 0
    # Every trainable weight (encoder, keypointer, decoder) still gets a gradient via the target.
    with tf.GradientTape() as tape:
        outputs = model.transport_images(source, target, training=True)
        loss = tf.reduce_mean(outputs["reconstruction"])
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None for g in grads)


def test_call_returns_the_architecture_contract():
    model = _tiny_model()
    frames = _frames(3, 3)
    out = model(frames)
    k = TINY.num_keypoints
    assert set(out) == {"keypoints", "keypoints_pixels", "heatmaps", "gaussian_maps"}
    assert out["keypoints"].shape == (3, k, 2)
    assert out["heatmaps"].shape == (3, TINY.feature_size, TINY.feature_size, k)
    assert out["gaussian_maps"].shape == (3, 16, 16, k)
    assert all(v.dtype == tf.float32 for v in out.values())
    keypoints = out["keypoints"].numpy()
    assert np.all(np.abs(keypoints) <= 1.0)
    np.testing.assert_allclose(out["keypoints"], ops.heatmaps_to_keypoints(out["heatmaps"], TINY.keypoint_reduction))
    np.testing.assert_allclose(out["keypoints_pixels"], ops.keypoints_to_pixels(keypoints, 16))
    # The Gaussian map of each keypoint peaks at the pixel holding its pixel coordinate.
    maps = out["gaussian_maps"].numpy()
    pixels = out["keypoints_pixels"].numpy()
    for b in range(3):
        for j in range(k):
            row, col = np.unravel_index(np.argmax(maps[b, :, :, j]), (16, 16))
            assert abs(col + 0.5 - pixels[b, j, 0]) <= 0.5
            assert abs(row + 0.5 - pixels[b, j, 1]) <= 0.5


def test_window_feature_maps_are_the_transported_features():
    model = _tiny_model()
    frames = _frames(3, 3)
    (features,) = model.window_feature_maps(frames)
    assert features.dtype == tf.float32 and features.shape == (3, 8, 8, 8)
    expected = model._features(tf.constant(frames, tf.float32) / 255.0, training=False)
    np.testing.assert_allclose(features, expected, atol=1e-6)


def test_bad_inputs_get_clear_errors():
    model = _tiny_model()
    frames = _frames(0, 2)
    # The frame-scaling rule shared with PermaKey: floats in [0, 1] are the same frames ...
    np.testing.assert_allclose(model(frames.astype(np.float32) / 255.0)["keypoints"],
                               model(frames)["keypoints"], atol=1e-5)
    # ... floats in [0, 255] are refused, never misread.
    with pytest.raises(ValueError, match="divide 0..255 pixels by 255"):
        model(frames.astype(np.float32))
    with pytest.raises(ValueError, match="uint8 frames in"):
        model(frames.astype(np.int32))
    with pytest.raises(ValueError, match=r"\[batch, 16, 16, 3\]"):
        model(np.zeros((1, 84, 84, 3), np.uint8))
    model.compile()
    with pytest.raises(ValueError, match="pairs"):
        model.train_on_batch(_frames(0, 2))
    with pytest.raises(TypeError, match="TransporterConfig"):
        Transporter("transporter")
    assert Transporter({"num_keypoints": 3}).config.num_keypoints == 3  # a config dict, as PermaKey


def test_defaults_are_the_papers():
    """The PermaKey paper's appendix A.2.2 on its Transporter: Adam 5e-4, x0.9 every 30,000 steps
    (its authors' code ran 2e-4, one --set away)."""
    config = TransporterConfig()
    assert (config.num_keypoints, config.keypoint_sigma, config.learning_rate) == (8, 0.1, 5e-4)
    assert (config.lr_decay_rate, config.lr_decay_steps, config.feature_size) == (0.9, 30_000, 42)
    model = Transporter()
    model.compile()
    schedule = model.optimizer._learning_rate
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    lr = [float(schedule(step)) for step in (0, 29_999, 30_000, 60_000)]
    np.testing.assert_allclose(lr, [5e-4, 5e-4, 4.5e-4, 4.05e-4], rtol=1e-5)
    model = Transporter(config.replace(lr_schedule="reference", learning_rate=2e-4))
    model.compile()
    np.testing.assert_allclose(float(model.optimizer._learning_rate(30_000)), 2e-4 / 1.9, rtol=1e-5)


def test_same_seed_same_model():
    frames = _frames(5, 2)
    a = _tiny_model(seed=7)(frames)["keypoints"]
    b = _tiny_model(seed=7)(frames)["keypoints"]
    c = _tiny_model(seed=8)(frames)["keypoints"]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("norm, output", [("layer", "linear"), ("instance", "sigmoid")])
def test_norm_and_output_switches_train(norm, output):
    model = _tiny_model(config=TINY.replace(norm=norm, decoder_output=output))
    assert not any("batch_normalization" in type(layer).__name__.lower()
                   for layer in model._flatten_layers())
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    batch = (_frames(1), _frames(2))
    first = model.train_on_batch(batch, return_dict=True)["reconstruction_loss"]
    for _ in range(5):
        last = model.train_on_batch(batch, return_dict=True)["reconstruction_loss"]
    assert np.isfinite(last) and last < first


def test_l2_weight_adds_to_loss_only():
    model = _tiny_model(config=TINY.replace(l2_weight=0.01))
    model.compile()
    logs = model.test_on_batch((_frames(1), _frames(2)), return_dict=True)
    kernels = [v for v in model.trainable_variables if "kernel" in v.path]
    penalty = 0.01 * sum(float(np.sum(np.square(v.numpy()))) for v in kernels)
    np.testing.assert_allclose(logs["loss"] - logs["reconstruction_loss"], penalty, rtol=1e-4)


def test_fits_on_the_pair_pipeline():
    """The contract with permakey_tf.data.pipelines: pair_batches' (source, target) uint8 batches train it."""
    from permakey_tf.data import pipelines

    n = 40
    examples = tf.data.Dataset.from_tensor_slices({
        "image": _frames(4, n),
        "episode_id": np.repeat([0, 1], n // 2).astype(np.int32),
        "step": np.tile(np.arange(n // 2), 2).astype(np.int32),
    })
    pairs = pipelines.pair_batches(examples, batch_size=4, seed=0,
                              pairs=pipelines.PairConfig(sampling="gap", gap=5))
    model = _tiny_model()
    model.compile()
    batches = list(pairs)
    assert batches and all(s.dtype == tf.uint8 and t.shape == s.shape for s, t in batches)
    history = model.fit(pairs, epochs=1, verbose=0)
    # Keras 3.15 counts one extra, weightless step per epoch on datasets of unknown cardinality.
    assert len(batches) <= int(model.optimizer.iterations) <= len(batches) + 1
    assert np.all(np.isfinite(history.history["reconstruction_loss"]))



def test_restart_keypointer_renews_only_the_keypointer_and_its_adam_moments():
    """After some steps, the restart gives the keypointer the weights a fresh one drawn with the
    seed has, zeroes exactly its Adam moments, and leaves encoder, decoder, their moments and the
    step count alone; training goes on from there."""
    model = _tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    batch = (_frames(1), _frames(2))
    for _ in range(3):
        model.train_on_batch(batch)
    others = {v.path: v.numpy().copy() for v in model.encoder.weights + model.decoder.weights}
    keypointer_paths = [v.path for v in model.keypointer.trainable_variables]
    is_keypointer_slot = [any(slot.name.startswith(p.replace("/", "_") + "_") for p in keypointer_paths)
                          for slot in model.optimizer.variables]
    slots_before = [slot.numpy().copy() for slot in model.optimizer.variables]
    steps = int(model.optimizer.iterations)

    model.restart_keypoint_network(seed=7)

    fresh = _tiny_model(seed=99)  # other weights, then the same restart draw
    fresh.restart_keypointer(seed=7)
    for restarted, expected in zip(model.keypointer.get_weights(), fresh.keypointer.get_weights()):
        np.testing.assert_array_equal(restarted, expected)
    assert not all(np.array_equal(a, b) for a, b in zip(model.keypointer.get_weights(),
                                                        _tiny_model().keypointer.get_weights()))
    for v in model.encoder.weights + model.decoder.weights:
        np.testing.assert_array_equal(v.numpy(), others[v.path])
    assert sum(is_keypointer_slot) == 2 * len(keypointer_paths), "Adam's two moments per variable"
    for slot, before, mine in zip(model.optimizer.variables, slots_before, is_keypointer_slot):
        if mine:
            assert not np.any(slot.numpy()) and np.any(before)
        else:
            np.testing.assert_array_equal(slot.numpy(), before)
    assert int(model.optimizer.iterations) == steps
    assert np.isfinite(model.train_on_batch(batch, return_dict=True)["loss"])


def test_annealed_temperature_falls_geometrically_in_training_and_never_in_inference():
    """Start 1.0 -> 0.25 over 4 steps: training's heatmap logits are the plain ones divided by
    1.0, 0.5 (half-way, the geometric mean), 0.25 and then 0.25 for good; inference divides by
    0.25 at every step. LayerNorm, so training and inference differ only by the temperature."""
    import dataclasses

    config = dataclasses.replace(TINY, norm="layer", heatmap_temperature=0.25,
                                 heatmap_temperature_start=1.0, heatmap_temperature_anneal_steps=4)
    model = _tiny_model(config=config)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    images = model._scale(_frames(3))
    plain = model.keypointer(images, training=False, temperature=1.0).numpy()
    for step, temperature in ((0, 1.0), (2, 0.5), (4, 0.25), (9, 0.25)):
        model.optimizer.iterations.assign(step)
        trained, _ = model._keypoints(images, training=True)
        np.testing.assert_allclose(trained.numpy(), plain / temperature, rtol=1e-4, atol=1e-5)
        inferred, _ = model._keypoints(images, training=False)
        np.testing.assert_allclose(inferred.numpy(), plain / 0.25, rtol=1e-4, atol=1e-5)
    # Off (the default): training uses the layer's own temperature, whatever the step.
    off = _tiny_model()
    off.compile(optimizer=keras.optimizers.Adam(1e-3))
    off.optimizer.iterations.assign(2)
    assert off.training_temperature() is None
    with pytest.raises(ValueError, match="heatmap_temperature_start > 0 and heatmap_temperature_anneal_steps"):
        dataclasses.replace(TINY, heatmap_temperature_start=1.0)


# ------------------------------------------------------------------------------ saving, options
def _copy(model: Transporter) -> Transporter:
    clone = Transporter.from_config(model.get_config())
    clone(_frames(0, 2, model.config.image_size))
    clone.set_weights(model.get_weights())
    return clone


def test_save_load_round_trip_restores_weights_config_and_optimizer(tmp_path):
    model = _tiny_model()
    model.compile()
    pairs = [(_frames(10 + i), _frames(20 + i)) for i in range(4)]
    for batch in pairs[:2]:
        model.train_on_batch(batch)
    path = str(tmp_path / "transporter.keras")
    model.save(path)
    loaded = keras.models.load_model(path)

    assert isinstance(loaded, Transporter) and loaded.config == model.config
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(loaded.optimizer.iterations) == 2
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Training goes on identically: same losses, step after step.
    for batch in pairs[2:]:
        expected = model.train_on_batch(batch, return_dict=True)["loss"]
        actual = loaded.train_on_batch(batch, return_dict=True)["loss"]
        assert actual == pytest.approx(expected, rel=1e-6)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_jit_compile_matches_graph_mode():
    graph = _tiny_model()
    xla = _copy(graph)
    graph.compile(jit_compile=False)
    xla.compile(jit_compile=True)
    batch = (_frames(1), _frames(2))
    for _ in range(2):  # the first loss checks the forward pass, the second one update
        expected = graph.train_on_batch(batch, return_dict=True)["loss"]
        actual = xla.train_on_batch(batch, return_dict=True)["loss"]
        assert actual == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(
    "policy, jit", [("mixed_bfloat16", False), ("mixed_float16", False), ("mixed_bfloat16", True)]
)
def test_mixed_precision_trains_with_float32_losses(policy, jit):
    keras.mixed_precision.set_global_policy(policy)
    model = _tiny_model()
    assert model.encoder.convs[0].compute_dtype == policy.split("_")[1]
    model.compile(jit_compile=jit)
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    batch = (_frames(1), _frames(2))
    logs = [model.train_on_batch(batch, return_dict=True)["loss"] for _ in range(2)]
    assert np.all(np.isfinite(logs))
    out = model(batch[0])
    assert out["keypoints"].dtype == tf.float32 and out["gaussian_maps"].dtype == tf.float32
    assert all(v.dtype == "float32" for v in model.trainable_variables)


def test_loss_is_scaled_by_replica_count():
    """Two logical CPUs each see the same half-batch: the MirroredStrategy update must equal the
    single-device update (without the 1/num_replicas scaling it would be twice as large)."""
    script = textwrap.dedent(
        """
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        two = [tf.config.LogicalDeviceConfiguration()] * 2
        tf.config.set_logical_device_configuration(cpu, two)
        import keras
        from permakey_tf.config import TransporterConfig
        from permakey_tf.models.transporter import Transporter
        config = TransporterConfig(image_size=16, encoder_filters=(4, 4, 8, 8),
                                   decoder_filters=(8, 8, 8, 8), num_keypoints=2, norm="layer")
        rng = np.random.default_rng(0)
        source = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
        target = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
        def update(strategy, source, target):
            with strategy.scope():
                keras.utils.set_random_seed(0)
                model = Transporter(config)
                model(source[:1])
                model.compile(optimizer=keras.optimizers.SGD(1.0))
                before = [w.copy() for w in model.get_weights()]
                ds = tf.data.Dataset.from_tensors((source, target))
                model.fit(ds, epochs=1, verbose=0)
                return [a - b for a, b in zip(model.get_weights(), before)]
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        single = update(tf.distribute.OneDeviceStrategy(devices[0]), source, target)
        mirrored = update(tf.distribute.MirroredStrategy(devices), np.concatenate([source, source]),
                          np.concatenate([target, target]))
        ratio = sum(np.abs(m).sum() for m in mirrored) / sum(np.abs(s).sum() for s in single)
        print("RATIO", ratio)
        """
    )
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ratio = float(result.stdout.split("RATIO")[-1])
    assert ratio == pytest.approx(1.0, rel=1e-3)


# ---------------------------------------------------------------------------------- learning
SIZE, SQUARE = 32, 6
HIT_RADIUS = 4.0


def _moving_square_frames(rng, n):
    """Static background with a static blue distractor; a red 6x6 square anywhere.

    Returns uint8 frames [n, 32, 32, 3] and the square's centre [n, 2] as (x, y) pixels.
    """
    frames = np.full((n, SIZE, SIZE, 3), 40, np.uint8)
    frames[:, 4:10, 22:28] = (60, 60, 220)
    half = SQUARE // 2
    centres = rng.integers(half, SIZE - half + 1, size=(n, 2))  # (row, col) of the centre
    for frame, (row, col) in zip(frames, centres):
        frame[row - half:row + half, col - half:col + half] = (230, 50, 50)
    return frames, centres[:, ::-1].astype(np.float32)


def _fixed_point_chance(radius):
    """Best hit rate of ONE keypoint that ignores the frame: the largest fraction of the square's
    possible centres within ``radius`` of any fixed point (searched on a 0.25 px grid)."""
    half = SQUARE // 2
    axis = np.arange(half, SIZE - half + 1, dtype=np.float32)
    centres = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    candidates = np.arange(0, SIZE, 0.25, dtype=np.float32)
    best = 0.0
    for x in candidates:
        d = np.hypot(centres[:, :1] - x, centres[:, 1:] - candidates[None, :])  # [centres, y]
        best = max(best, float((d < radius).mean(axis=0).max()))
    return best


@pytest.fixture(scope="module")
def square_model():
    """A Transporter trained 300 steps on moving-square pairs (see the learning test), shared by
    the learning test and the diagnosis test."""
    keras.utils.set_random_seed(0)
    config = TransporterConfig(
        image_size=SIZE, encoder_filters=(8, 8, 16, 16), decoder_filters=(32, 32, 16, 16),
        num_keypoints=2, learning_rate=1e-3,
    )
    model = Transporter(config)
    model.compile()
    rng = np.random.default_rng(0)
    steps, batch = 300, 16
    source, _ = _moving_square_frames(rng, steps * batch)
    target, _ = _moving_square_frames(rng, steps * batch)
    history = model.fit(
        tf.data.Dataset.from_tensor_slices((source, target)).batch(batch), epochs=1, verbose=0
    )
    assert np.isfinite(history.history["loss"][-1])
    return model


def test_learns_a_keypoint_on_the_moving_square(square_model):
    """Source and target show the square at independent random positions over a static scene.

    A keypoint "hits" when it lies within 4 px of the square's centre (the square is 6x6). Chance:
    a keypoint that does not look at the frame hits at most ``p1`` of the frames (the largest
    fraction of the 27x27 possible centres inside a radius-4 disc, about 0.07), so any fixed
    layout of K = 2 keypoints hits at most 2 p1 (about 0.14). We require the learned keypoints to
    hit in at least half the test frames and at least 3x that bound, and to beat the model's
    own mean layout by the same factor: it must track the square, not sit in a lucky place.
    In 300 steps (about 20-30 s on 2 shared cores) the run used to write this hits 100%.
    Faster-than-paper settings for a CPU test: 32x32 frames, narrow layers, Adam 1e-3, batch 16.
    """
    model, config = square_model, square_model.config
    test_frames, centres = _moving_square_frames(np.random.default_rng(1), 400)
    pixels = model.predict(test_frames, batch_size=100, verbose=0)["keypoints_pixels"]
    hits = (np.linalg.norm(pixels - centres[:, None], axis=-1) < HIT_RADIUS).any(axis=1).mean()
    mean_layout = pixels.mean(axis=0)
    layout_hits = (
        np.linalg.norm(mean_layout[None] - centres[:, None], axis=-1) < HIT_RADIUS
    ).any(axis=1).mean()
    chance_bound = config.num_keypoints * _fixed_point_chance(HIT_RADIUS)
    assert 0.05 < chance_bound < 0.2
    assert hits >= 0.5, f"hit rate {hits:.2f} (chance <= {chance_bound:.2f})"
    assert hits >= 3 * chance_bound, f"hit rate {hits:.2f} vs chance bound {chance_bound:.2f}"
    assert hits >= 3 * max(layout_hits, 0.05), f"hit {hits:.2f}, own mean layout {layout_hits:.2f}"


def test_diagnosis_of_the_square_model_shows_it_uses_its_keypoints(square_model):
    """evaluation.transport_diagnosis on the trained square model: its reconstruction owes much
    to where its keypoints are (lower error than with its fixed layout or with no keypoint, most
    of the gain on the pixels that changed), and a keypoint moves with the square. The same
    model with its heatmaps frozen (test_transport_diagnosis.py) gets ratio 1 and no motion."""
    from permakey_tf.evaluation.transport_diagnosis import diagnose_transporter

    rng = np.random.default_rng(2)
    source, _ = _moving_square_frames(rng, 128)
    target, _ = _moving_square_frames(rng, 128)
    diagnosis = diagnose_transporter(square_model, source, target)
    # Measured when written: ratio 0.84 over all pixels (the static background dominates, and
    # the decoder is far from done after 300 steps), 0.26 on the changed pixels, share 0.74.
    assert diagnosis.loss_ratio_fixed < 0.95, diagnosis.summary()
    assert diagnosis.loss_ratio_fixed_changed < 0.5, diagnosis.summary()
    assert diagnosis.mse_own < 0.95 * diagnosis.mse_no_keypoints, diagnosis.summary()
    assert diagnosis.keypoint_share_of_changed_error > 0.5, diagnosis.summary()
    # The square's centre is uniform over 27 px per axis (sd ~7.8 px, ~11 px in 2-D).
    assert max(diagnosis.keypoint_motion_px) > 5.0, diagnosis.summary()
    # Two 6x6 squares of 32x32 change at most 72 of 1024 pixels.
    assert 0.02 < diagnosis.changed_pixel_share <= 72 / 1024
