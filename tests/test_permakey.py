"""PermaKey: outputs, gradient isolation, training switches, and a small learning test. Its
per-module optimizers (compile, saving, loss scaling): tests/test_module_optimizers.py."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

import permakey_tf
from permakey_tf.models import ops
from permakey_tf.config import PermaKeyConfig
from permakey_tf.models.permakey import PermaKey, scale_frames

from tiny_permakey import LOSSES, TINY, permakey_frames, permakey_model


def _copy_state(source, target):
    target.set_weights(source.get_weights())
    target.sampling_seed.state.assign(source.sampling_seed.state)


def test_public_api_and_output_contract():
    assert permakey_tf.PermaKey is PermaKey
    model = permakey_model()
    frames = permakey_frames()
    out = model(frames)
    assert set(out) == {
        "keypoints", "keypoints_pixels", "heatmaps", "gaussian_maps", "error_maps", "reconstruction"
    }
    assert out["keypoints"].shape == (2, 3, 2) and out["keypoints_pixels"].shape == (2, 3, 2)
    assert out["heatmaps"].shape == (2, 42, 42, 3)  # pointnet_second_stride = 1
    assert out["gaussian_maps"].shape == (2, 84, 84, 3)
    assert out["error_maps"].shape == (2, 84, 84, 2)  # one map per LSP layer
    assert out["reconstruction"].shape == (2, 84, 84, 3)
    error_maps = out["error_maps"].numpy()
    assert error_maps.min() >= 0 and error_maps.max() <= 1
    np.testing.assert_allclose(error_maps.max(axis=(1, 2)), 1.0, atol=1e-4)
    assert np.abs(out["keypoints"].numpy()).max() <= 1
    # The Gaussian maps peak where keypoints_pixels says (x, y), within a pixel.
    for b in range(2):
        for k in range(3):
            row, col = np.unravel_index(out["gaussian_maps"][b, :, :, k].numpy().argmax(), (84, 84))
            x, y = out["keypoints_pixels"][b, k].numpy()
            assert abs(col + 0.5 - x) <= 1 and abs(row + 0.5 - y) <= 1
    # uint8 frames and the same frames as floats in [0, 1] give the same outputs ...
    as_float = model(frames.astype(np.float32) / 255.0)
    np.testing.assert_allclose(as_float["keypoints"], out["keypoints"], atol=1e-5)
    # ... and float pixels in [0, 255] are refused (eagerly and inside a graph).
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        model(frames.astype(np.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="divide 0..255 pixels by 255"):
        tf.function(lambda f: model(f)["keypoints"])(tf.constant(frames, tf.float32))
    # The cheap path skips the decoder and agrees on the rest.
    light = model.predict_keypoints(frames)
    assert "reconstruction" not in light
    np.testing.assert_allclose(light["keypoints"], out["keypoints"], atol=1e-6)


def test_window_feature_maps_are_the_encoder_blocks_the_lsp_networks_read():
    config = dataclasses.replace(TINY, lsp_layers=(1, 2))
    model = permakey_model(config)
    frames = permakey_frames()
    maps = model.window_feature_maps(frames)
    blocks = model.encoder(scale_frames(frames, 84), training=False)
    assert len(maps) == 2
    for features, layer in zip(maps, (1, 2)):
        assert features.dtype == tf.float32
        np.testing.assert_allclose(features, blocks[layer], atol=1e-6)
    assert maps[0].shape == (2, 42, 42, 8) and maps[1].shape == (2, 21, 21, 8)  # strides 1, 2, 2


def test_bad_inputs_and_compile_arguments_give_clear_errors():
    model = permakey_model()
    with pytest.raises(ValueError, match="batch axis"):
        model(permakey_frames()[0])
    with pytest.raises(ValueError, match="resize"):
        model(np.zeros((1, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        model(np.zeros((1, 84, 84, 3), np.int32))
    with pytest.raises(ValueError, match="vae_optimizer"):
        model.compile(optimizer="adam")
    shared = keras.optimizers.Adam()
    with pytest.raises(ValueError, match="distinct"):
        model.compile(shared, shared, shared)
    with pytest.raises(ValueError, match="error_map_mode"):
        PermaKeyConfig(error_map_mode="mae")


def test_config_round_trip_and_paper_defaults():
    model = permakey_model()
    clone = PermaKey.from_config(model.get_config())
    assert clone.config == model.config
    paper = PermaKeyConfig()
    assert paper.lsp_layers == (0, 1) and paper.patch_size == 2 and paper.keypoint_sigma == 0.1
    # Not the paper's: the outputs' keypoints are refined on the error maps (0 = the paper).
    assert paper.keypoint_refinement_steps == 2
    # A config saved before the refinement existed loads with today's default.
    saved = {k: v for k, v in model.config.to_dict().items() if not k.startswith("keypoint_refinement")}
    assert PermaKeyConfig.from_dict(saved).keypoint_refinement_steps == 2
    assert paper.latent_dim == 32 and paper.learning_rate == 2e-4


def test_gradients_do_not_cross_modules():
    """Each module's gradient from its own loss equals its gradient from the sum of all losses
    (the three-tape step equals one tape over the sum), and no loss reaches another module."""
    model = permakey_model()
    x = scale_frames(permakey_frames(), 84)
    with tf.GradientTape(persistent=True) as tape:
        outputs = model._forward(x, training=True)
        losses = model.compute_losses(x, outputs)
        total = losses["vae_loss"] + losses["lsp_loss"] + losses["pointnet_loss"]
    variables = model.module_variables()
    own_loss = {"vae": "vae_loss", "lsp": "lsp_loss", "pointnet": "pointnet_loss"}
    for module, loss_name in own_loss.items():
        own = tape.gradient(losses[loss_name], variables[module])
        joint = tape.gradient(total, variables[module])
        assert all(g is not None for g in own)
        for a, b in zip(own, joint):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
        for other_module, other_loss in own_loss.items():
            if other_module != module:
                crossing = tape.gradient(losses[other_loss], variables[module])
                assert all(g is None for g in crossing), (other_loss, module)


def test_fit_on_unlabelled_uint8_dataset_and_evaluate_includes_pointnet():
    model = permakey_model()
    model.compile()
    frames = permakey_frames(4)
    dataset = tf.data.Dataset.from_tensor_slices(frames).batch(2)
    history = model.fit(dataset, epochs=1, verbose=0)
    assert set(LOSSES) <= set(history.history)
    assert all(np.isfinite(history.history[name][-1]) for name in LOSSES)
    logs = model.evaluate(frames, batch_size=4, verbose=0, return_dict=True)
    x = scale_frames(frames, 84)
    expected = model.compute_losses(x, model._forward(x, training=False))
    for name in LOSSES:
        assert logs[name] == pytest.approx(float(expected[name]), rel=1e-4)
    assert logs["pointnet_loss"] > 0


def test_inference_error_maps_use_batch_statistics_and_change_no_state():
    model = PermaKey(TINY.replace(inference_batch_statistics=True))
    model.compile()
    frames = permakey_frames(3, seed=1)
    model.train_on_batch(frames)
    state = [v.numpy().copy() for v in model.variables]
    inference = model(frames, training=False)
    scored = inference["error_maps"].numpy()
    for before, variable in zip(state, model.variables):
        np.testing.assert_array_equal(before, variable.numpy())
    # Same maps and keypoints as the training-mode forward pass computes from the same weights.
    in_training = model._forward(scale_frames(frames, 84), training=True)
    np.testing.assert_allclose(scored, in_training["error_maps"], atol=1e-4)
    refined = model.refined_keypoints(in_training["keypoints"], in_training["error_maps"])
    np.testing.assert_allclose(inference["keypoints"], refined["keypoints"], atol=1e-4)
    # With BatchNorm's moving averages (barely moved after one step) the maps differ.
    plain = PermaKey(TINY.replace(inference_batch_statistics=False))
    plain.set_weights([v.numpy() for v in model.weights])
    assert not np.allclose(plain(frames)["error_maps"], scored, atol=1e-2)
    # Recomputed ("precise") statistics of the same frames bring the moving-average path to
    # the training-mode maps.
    assert plain.recompute_batch_norm_statistics([frames]) == 1
    np.testing.assert_allclose(plain(frames)["error_maps"], scored, atol=1e-3)


def test_jit_compile_gives_the_same_losses_as_graph_mode():
    graph = permakey_model()
    xla = PermaKey(TINY)
    _copy_state(graph, xla)
    graph.compile(jit_compile=False)
    xla.compile(jit_compile=True)
    for seed in range(2):
        frames = permakey_frames(2, seed)
        a = graph.train_on_batch(frames, return_dict=True)
        b = xla.train_on_batch(frames, return_dict=True)
        for name in LOSSES:
            assert a[name] == pytest.approx(b[name], rel=1e-4, abs=1e-6), name


def test_fast_kernels_train_exactly_like_the_straightforward_layers(monkeypatch):
    """Fused batch norm + the ring-matmul LSPN weight gradient (the speed-ups of
    docs/PERFORMANCE.md) take the same training steps as Keras' BatchNormalization + autodiff of
    the masked convolution, from the same weights on the same batches."""
    from permakey_tf.models import cell_grid, networks

    fast = permakey_model()
    fast.compile()
    mask = np.ones([3, 3, 1, 1], np.float32)
    mask[1, 1] = 0.0
    with monkeypatch.context() as patch:
        patch.setattr(networks, "FusedBatchNormalization", keras.layers.BatchNormalization)
        # Training normalises with batch statistics in both; scoring mode is not used here.
        def keras_batch_norm(norm, x, training=None, batch_statistics=False, relu=False):
            outputs = norm(x, training=training)
            return tf.nn.relu(outputs) if relu else outputs

        patch.setattr(networks, "apply_batch_norm", keras_batch_norm)
        patch.setattr(cell_grid, "neighbour_conv",
                      lambda c, k, border="zero": tf.nn.conv2d(c, k * mask, 1, "SAME"))
        plain = permakey_model()
        plain.compile()
        assert not any(type(layer).__name__ == "FusedBatchNormalization" for layer in plain._flatten_layers())
        _copy_state(fast, plain)
        plain_step = tf.function(plain.train_step)
        plain_logs = [plain_step(permakey_frames(4, seed)) for seed in range(3)]
    fast_step = tf.function(fast.train_step)
    fast_logs = [fast_step(permakey_frames(4, seed)) for seed in range(3)]
    for a, b in zip(fast_logs, plain_logs):
        for name in LOSSES:
            np.testing.assert_allclose(float(a[name]), float(b[name]), rtol=1e-4, err_msg=name)
    # Float32 rounding differs between the fused and the plain ops; the heatmap temperature
    # (logits x 5) amplifies it in the PointNet to a few 1e-5 after 3 steps. A wrong tap order
    # changes weights by 1e-2 and more.
    for a, b in zip(fast.weights, plain.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-4, err_msg=a.path)


def test_mixed_bfloat16_trains_with_float32_losses():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = permakey_model()
    assert model.encoder.compute_dtype == "bfloat16"
    assert model.encoder.variable_dtype == "float32"
    x = scale_frames(permakey_frames(), 84)
    losses = model.compute_losses(x, model._forward(x, training=True))
    assert all(loss.dtype == tf.float32 for loss in losses.values())
    model.compile()
    logs = model.train_on_batch(permakey_frames(), return_dict=True)
    assert all(np.isfinite(logs[name]) for name in LOSSES)


def _shape_frames(count, rng):
    """84x84 frames: dark background, a red square, a green plus and a blue disc (each about
    9 px across) at random non-overlapping positions. Returns uint8 frames and the shapes'
    (x, y) pixel centres [count, 3, 2]."""
    frames = np.full((count, 84, 84, 3), 20, np.uint8)
    centres = np.zeros((count, 3, 2), np.float32)
    ys, xs = np.mgrid[0:84, 0:84] + 0.5
    for i in range(count):
        placed = []
        while len(placed) < 3:
            candidate = rng.uniform(10, 74, size=2)
            if all(np.hypot(*(candidate - other)) > 16 for other in placed):
                placed.append(candidate)
        (x0, y0), (x1, y1), (x2, y2) = placed
        square = (np.abs(xs - x0) <= 4) & (np.abs(ys - y0) <= 4)
        plus = ((np.abs(xs - x1) <= 5) & (np.abs(ys - y1) <= 1.5)) | (
            (np.abs(ys - y1) <= 5) & (np.abs(xs - x1) <= 1.5)
        )
        disc = np.hypot(xs - x2, ys - y2) <= 4.5
        for mask, colour in ((square, (230, 40, 40)), (plus, (40, 230, 40)), (disc, (60, 60, 240))):
            frames[i][mask] = colour
        centres[i] = placed
    return frames, centres


def _mean_nearest_distance(points, centres):
    """Mean over frames and points of the distance (px) from a point to the nearest centre."""
    distances = np.linalg.norm(points[:, :, None] - centres[:, None], axis=-1)
    return float(distances.min(axis=-1).mean())


def test_learns_keypoints_and_error_maps_on_shapes():
    """Short CPU training (400 steps, batch 16, ~35 s of CPU on an idle 2-core machine) on
    frames with three shapes at random places.

    Chance: uniform random points lie ~24 px from the nearest shape on average. Measured when
    this test was written: error-map peaks ~2 px (the LSPN finds the shapes at once), keypoints
    ~18 px, the keypoints' own fixed mean layout ~20.5 px (the PointNet is the slow part,
    docs/BACKGROUND.md section 10). Margins: error-map peaks within a quarter of chance (a peak off the
    shapes lands ~24 px away, so this only passes if peaks sit on shapes); keypoints below 0.9 x
    chance and not farther than their own fixed layout, i.e. they moved with the shapes at least
    a little. sigma 0.05 instead of 0.1: with ~9 px shapes and sparse RMSE maps, a sigma 0.1
    Gaussian costs more than the error mass it covers, so keypoints leave the picture
    (docs/BACKGROUND.md section 10); at sigma 0.05 covering a blob lowers the PointNet loss.
    """
    rng = np.random.default_rng(0)
    train, _ = _shape_frames(512, rng)
    test, centres = _shape_frames(64, rng)
    config = PermaKeyConfig(
        encoder_filters=(8, 16, 16, 16),
        latent_dim=8,
        lsp_layers=(0,),
        lsp_hidden_widths=(32, 16),
        num_keypoints=3,
        pointnet_second_stride=2,
        keypoint_sigma=0.05,
    )
    model = permakey_model(config)
    model.compile(
        keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-2)
    )
    dataset = tf.data.Dataset.from_tensor_slices(train).shuffle(512, seed=0).repeat().batch(16)
    history = model.fit(dataset, steps_per_epoch=100, epochs=4, verbose=0).history
    for name in ("reconstruction_loss", "lsp_loss", "pointnet_loss"):
        assert history[name][-1] < 0.5 * history[name][0], name

    out = model.predict_keypoints(test)
    chance = _mean_nearest_distance(rng.uniform(0, 84, size=(64, 1000, 2)), centres)
    error_maps = out["error_maps"].numpy()[..., 0]
    peaks = np.array([np.unravel_index(m.argmax(), m.shape) for m in error_maps])[:, ::-1] + 0.5
    assert _mean_nearest_distance(peaks[:, None], centres) < 0.25 * chance

    keypoints = out["keypoints_pixels"].numpy()
    layout = np.broadcast_to(keypoints.mean(axis=0, keepdims=True), keypoints.shape)
    learned = _mean_nearest_distance(keypoints, centres)
    assert learned < 0.9 * chance
    assert learned <= _mean_nearest_distance(layout, centres)



def test_pointnet_restart_renews_only_the_pointnet_and_is_reproducible():
    from permakey_tf.training.callbacks import RestartKeypointNetwork

    frames = permakey_frames(batch=8, seed=3)

    def trained(restart_step):
        model = permakey_model(seed=0)
        model.compile()
        callbacks = [RestartKeypointNetwork(restart_step, seed=11)] if restart_step else []
        model.fit(frames, batch_size=2, epochs=1, verbose=0, shuffle=False, callbacks=callbacks)
        return model

    plain, restarted, again = trained(0), trained(2), trained(2)
    # Four steps; the PointNet's optimizer started over before the third.
    assert int(restarted.vae_optimizer.iterations) == 4
    assert int(restarted.pointnet_optimizer.iterations) == 2
    # No gradient crosses modules, so the VAE and the LSPNs train exactly as without a restart ...
    for a, b in zip(plain.encoder.weights + plain.lspns[0].weights,
                    restarted.encoder.weights + restarted.lspns[0].weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # ... while the PointNet differs, the same way every time.
    assert any(not np.array_equal(a.numpy(), b.numpy())
               for a, b in zip(plain.pointnet.weights, restarted.pointnet.weights))
    for a, b in zip(restarted.pointnet.weights, again.pointnet.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_keypoint_refinement_moves_only_the_outputs_onto_error_mass():
    """keypoint_refinement_steps: the outputs' keypoints are the PointNet's moved by mean shift on
    the model's own error maps; everything else (heatmaps, error maps, losses, weights) is the
    same model's."""
    refined_config = dataclasses.replace(TINY, keypoint_refinement_steps=2)
    plain, refined = permakey_model(dataclasses.replace(TINY, keypoint_refinement_steps=0)), permakey_model(refined_config)
    refined.build((None, 84, 84, 3))
    plain.build((None, 84, 84, 3))
    refined.set_weights(plain.get_weights())
    frames = permakey_frames(batch=3, seed=5)
    a, b = plain(frames, training=False), refined(frames, training=False)
    for name in ("heatmaps", "error_maps", "reconstruction"):
        np.testing.assert_array_equal(a[name], b[name])
    expected = ops.mean_shift_keypoints(a["keypoints"], a["error_maps"], TINY.keypoint_sigma, 2)
    np.testing.assert_allclose(b["keypoints"], expected, atol=1e-6)
    assert np.abs(b["keypoints"].numpy() - a["keypoints"].numpy()).max() > 1e-3  # it did move
    np.testing.assert_allclose(b["keypoints_pixels"], ops.keypoints_to_pixels(expected), atol=1e-4)
    # Refinement raises the error mass under the windows (each step climbs the blurred map).
    def mass_under_windows(outputs):
        return float(tf.reduce_sum(outputs["gaussian_maps"] * tf.reduce_sum(outputs["error_maps"], -1,
                                                                           keepdims=True)))
    assert mass_under_windows(b) > mass_under_windows(a)
    # The PointNet's loss is the PointNet's: the same with and without refinement.
    plain.compile()
    refined.compile()
    x = tf.constant(frames)
    np.testing.assert_allclose(plain.evaluate(x, verbose=0, return_dict=True)["pointnet_loss"],
                               refined.evaluate(x, verbose=0, return_dict=True)["pointnet_loss"], rtol=1e-6)
    with pytest.raises(ValueError, match="keypoint_refinement_steps"):
        dataclasses.replace(TINY, keypoint_refinement_steps=-1)
