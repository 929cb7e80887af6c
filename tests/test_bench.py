"""The benchmark suite (bench/): the FLOP counter on hand-computable layers, and every bench
script running end to end on tiny models (--smoke)."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from bench import common


def _count(fn, *specs):
    return common.graph_flops(tf.function(fn).get_concrete_function(*specs))


def test_dense_flops_are_two_m_n_k():
    dense = keras.layers.Dense(5)
    dense.build((None, 7))
    count = _count(dense, tf.TensorSpec([3, 7], tf.float32))
    assert count.executed_flops == 2 * 3 * 7 * 5  # the bias add is element-wise, not counted
    assert count.by_op_type == {"MatMul": 2 * 3 * 7 * 5}


def test_conv_flops_and_gradients_skip_dead_input_gradient():
    conv = keras.layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False)
    conv.build((None, 8, 8, 3))
    forward = 2 * 2 * 4 * 4 * 4 * (3 * 3 * 3)  # B Ho Wo Co (kh kw Ci), x2
    spec = tf.TensorSpec([2, 8, 8, 3], tf.float32)
    assert _count(conv, spec).executed_flops == forward

    def kernel_gradient(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(conv(x) ** 2)
        return tape.gradient(loss, conv.kernel)

    def both_gradients(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(conv(x) ** 2)
        return tape.gradient(loss, [conv.kernel, x])

    # The input gradient is not needed for the kernel's: not counted (Grappler prunes it too).
    only_kernel = _count(kernel_gradient, spec)
    assert only_kernel.executed_flops == 2 * forward
    assert "Conv2DBackpropInput" not in only_kernel.by_op_type
    assert _count(both_gradients, spec).executed_flops == 3 * forward


def test_einsum_and_batch_matmul_flops():
    a = tf.TensorSpec([2, 3, 4], tf.float32)
    b = tf.TensorSpec([2, 4, 5], tf.float32)
    assert _count(lambda x, y: tf.einsum("bij,bjk->bik", x, y), a, b).executed_flops == 2 * 2 * 3 * 4 * 5
    assert _count(tf.matmul, a, b).executed_flops == 2 * 2 * 3 * 4 * 5


def test_lspn_skips_the_centre_tap_and_a_live_masked_input_gradient_counts_it_as_zero_taps():
    from permakey_tf.models.networks import LocalSpatialPredictor

    lspn = LocalSpatialPredictor(patch_size=2, hidden_widths=(6,), name="lspn_layer0")
    lspn.build((None, 4, 4, 2))
    spec = tf.TensorSpec([1, 4, 4, 2], tf.float32)
    count = _count(lambda f: lspn(f, training=False)[0], spec)
    cells, depth = 2 * 2, 2 * 2 * 2
    ring_dense = 2 * cells * (8 * depth) * 6  # the paper's Dense over the 8 neighbour cells
    output_dense = 2 * cells * 6 * depth
    assert count.model_flops == ring_dense + output_dense
    assert count.executed_flops == count.model_flops  # the ring form never multiplies the centre tap

    def input_gradient(features):
        with tf.GradientTape() as tape:
            tape.watch(features)
            prediction, _ = lspn(features, training=False)
            loss = tf.reduce_sum(prediction)
        return tape.gradient(loss, features)

    # The input gradient (pruned in training, where LSPN inputs are stop-gradient) runs as a 3x3
    # transposed convolution with the masked kernel: its centre ninth is executed, not model work.
    with_input = _count(input_gradient, spec)
    masked_backprop = ring_dense * 9 / 8
    # (the output layer runs as a 1x1 convolution in inference: its input gradient is one too)
    assert with_input.by_op_type["Conv2DBackpropInput"] == masked_backprop + output_dense
    assert with_input.zero_tap_flops == masked_backprop / 9


def test_lspn_weight_gradient_is_the_exact_ring_product_and_belongs_to_the_layer():
    from permakey_tf.models.networks import LocalSpatialPredictor

    lspn = LocalSpatialPredictor(patch_size=2, hidden_widths=(6,), name="lspn_layer0")
    lspn.build((None, 4, 4, 2))

    def first_layer_gradient(features):
        with tf.GradientTape() as tape:
            prediction, _ = lspn(tf.stop_gradient(features), training=True)
            loss = tf.reduce_sum(prediction)
        return tape.gradient(loss, lspn.first_kernel)

    concrete = tf.function(first_layer_gradient).get_concrete_function(tf.TensorSpec([1, 4, 4, 2], tf.float32))
    count = common.graph_flops(concrete, ["lspn_layer0"])
    cells, depth = 2 * 2, 2 * 2 * 2
    ring_dense = 2 * cells * (8 * depth) * 6
    # Forward and backward on the ring (8 taps only; no input gradient, since the features are
    # stop-gradient), counted under the layer's name.
    assert count.by_op_type["Conv2DBackpropFilter"] == 0 and count.by_op_type["Conv2DBackpropInput"] == 0
    assert count.by_op_type["MatMul"] >= ring_dense
    assert count.by_module.get("other", 0.0) == 0.0


def test_v1_profiler_agrees_on_a_single_matmul():
    dense = keras.layers.Dense(5, use_bias=False)
    dense.build((None, 7))
    concrete = tf.function(dense).get_concrete_function(tf.TensorSpec([3, 7], tf.float32))
    assert common.v1_profiler_flops(concrete) == common.graph_flops(concrete).executed_flops


def test_unknown_batch_size_is_a_clear_error():
    dense = keras.layers.Dense(5)
    dense.build((None, 7))
    with pytest.raises(ValueError, match="static shapes"):
        _count(dense, tf.TensorSpec([None, 7], tf.float32))


def test_matmul_ceiling_is_positive_and_device_is_described():
    assert common.matmul_ceiling("float32", size=64, repeats=1) > 0
    assert "TF " in common.describe_device()
    assert common.peak_host_memory_gib() > 0


def _value(output: str, key: str) -> float:
    match = re.search(rf"{re.escape(key)}=([0-9.]+)", output)
    assert match, f"no {key}= in output:\n{output}"
    return float(match.group(1))


@pytest.mark.parametrize("model, unit", [("permakey", "frames/s"), ("transporter", "pairs/s")])
def test_train_throughput_smoke(capsys, model, unit):
    from bench import train_throughput

    argv = ["--smoke", "--in-process", "--model", model, "--precision", "float32", "--jit", "off"]
    assert train_throughput.main(argv) == 0
    output = capsys.readouterr().out
    assert _value(output, unit) > 0
    assert _value(output, "train_GFLOP/ex") > 0
    assert "util=" in output and "peak_mem=" in output


def test_inference_throughput_smoke(capsys):
    from bench import inference_throughput

    assert inference_throughput.main(["--smoke"]) == 0
    output = capsys.readouterr().out
    assert output.count("bench=inference") == 3
    assert "path=savedmodel" in output


def test_input_pipeline_smoke(capsys):
    from bench import input_pipeline

    assert input_pipeline.main(["--smoke", "--source", "memory"]) == 0
    output = capsys.readouterr().out
    assert output.count("bench=input") == 4  # frames/pairs x clean/noisy
    assert _value(output, "frames/s") > 0


def test_profile_step_smoke(capsys):
    from bench import profile_step

    assert profile_step.main(["--smoke", "--ops", "--lspn-forms"]) == 0
    output = capsys.readouterr().out
    assert "paper config, batch 2," in output
    for piece in ("vae", "lspn_layer0", "lspn_layer1", "pointnet", "optimizers", "full_step",
                  "lspn_layer0_patchform", "lspn_layer0_first_ring", "lspn_layer0_first_conv3x3"):
        assert f"piece={piece} " in output
    shares = [float(v.rstrip("%")) for v in re.findall(r"share=(\S+)", output)]
    assert "bench=profile_op" in output and sum(shares) == pytest.approx(100.0, abs=0.5)


def test_profile_step_first_layer_forms_compute_the_same_layer():
    from bench import profile_step
    from permakey_tf.models.networks import LocalSpatialPredictor

    lspn = LocalSpatialPredictor(patch_size=2, hidden_widths=(6,), name="lspn_layer0")
    lspn.build((None, 6, 8, 2))
    cells = tf.random.stateless_normal([2, 3, 4, 8], seed=[1, 2])
    ring, conv3x3 = (profile_step.first_layer_forward(lspn, form) for form in ("ring", "conv3x3"))
    np.testing.assert_allclose(ring(cells).numpy(), conv3x3(cells).numpy(), rtol=1e-5, atol=1e-5)
    spec = tf.TensorSpec(cells.shape, cells.dtype)
    ring_count, conv_count = (common.graph_flops(tf.function(form).get_concrete_function(spec), ["lspn_layer0"])
                              for form in (ring, conv3x3))
    # The 3x3 form multiplies the zero centre tap as well (9/8 of the ring form's work), which the
    # counter attributes to the layer and does not count as model work.
    assert conv_count.executed_flops == ring_count.executed_flops * 9 / 8 == 2 * 2 * 12 * 9 * 8 * 6
    assert conv_count.model_flops == ring_count.model_flops == ring_count.executed_flops
    assert set(conv_count.by_module) == set(ring_count.by_module) == {"lspn_layer0"}


def test_trace_op_times_finds_the_op_that_takes_the_time(tmp_path):
    big = tf.random.normal([768, 768])
    small = tf.random.normal([8])

    @tf.function
    def work(big, small):
        for _ in range(3):
            big = tf.matmul(big, big) * 1e-3
        return big, small + 1.0

    work(big, small)
    tf.profiler.experimental.start(str(tmp_path))
    work(big, small)
    tf.profiler.experimental.stop()
    times = common.trace_op_times(str(tmp_path))
    assert max(times, key=times.get) == "MatMul"
    assert not any(name.startswith("_Mkl") for name in times)
    with pytest.raises(FileNotFoundError, match="no tf.profiler trace"):
        common.trace_op_times(str(tmp_path / "missing"))


def test_count_flops_smoke(capsys):
    from bench import count_flops

    assert count_flops.main(["--smoke", "--model", "permakey"]) == 0
    assert "training / forward" in capsys.readouterr().out
