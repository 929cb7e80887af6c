"""Meaning of the LSPN's cell-grid functions in permakey_tf.models.cell_grid."""

import numpy as np
import pytest
import tensorflow as tf

from permakey_tf.models import cell_grid


def _numpy_neighbour_patches(features, p):
    """Straightforward loops: zero-pad by p, every p x p cell is a centre (H, W multiples of p)."""
    b, h, w, c = features.shape
    padded = np.zeros((b, h + 2 * p, w + 2 * p, c), features.dtype)
    padded[:, p : p + h, p : p + w] = features
    gh, gw = h // p, w // p
    ring = np.zeros((b, gh, gw, 8 * p * p * c), features.dtype)
    centre = np.zeros((b, gh, gw, p * p * c), features.dtype)
    for i in range(gh):
        for j in range(gw):
            cells = []
            for di in range(3):
                for dj in range(3):
                    top, left = (i + di) * p, (j + dj) * p
                    cells.append(padded[:, top : top + p, left : left + p].reshape(b, -1))
            centre[:, i, j] = cells[4]
            ring[:, i, j] = np.concatenate(cells[:4] + cells[5:], axis=1)
    return ring, centre


def test_neighbour_patches_hand_computed_corner_cell():
    # 4x4 map with values 1..16, p = 2: cells [[1,2,5,6], [3,4,7,8]], [[9,10,13,14], [11,12,15,16]].
    features = np.arange(1, 17, dtype=np.float32).reshape(1, 4, 4, 1)
    ring, centre = cell_grid.extract_neighbour_patches(features, 2)
    assert ring.shape == (1, 2, 2, 32) and centre.shape == (1, 2, 2, 4)
    np.testing.assert_array_equal(centre[0, 0, 0], [1, 2, 5, 6])
    np.testing.assert_array_equal(centre[0, 1, 1], [11, 12, 15, 16])
    # Top-left cell: neighbours above and to the left are outside the map (zeros).
    expected_ring = [0] * 16 + [3, 4, 7, 8] + [0] * 4 + [9, 10, 13, 14] + [11, 12, 15, 16]
    np.testing.assert_array_equal(ring[0, 0, 0], expected_ring)
    # Bottom-right cell: its right and lower neighbours are zeros.
    expected_ring = [1, 2, 5, 6, 3, 4, 7, 8, 0, 0, 0, 0, 9, 10, 13, 14] + [0] * 16
    np.testing.assert_array_equal(ring[0, 1, 1], expected_ring)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_neighbour_patches_match_loops_with_channels(p):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2, 3 * p, 4 * p, 3)).astype(np.float32)
    ring, centre = cell_grid.extract_neighbour_patches(features, p)
    expected_ring, expected_centre = _numpy_neighbour_patches(features, p)
    np.testing.assert_array_equal(ring, expected_ring)
    np.testing.assert_array_equal(centre, expected_centre)


def test_neighbour_patches_odd_size_rules():
    features = np.arange(1, 26, dtype=np.float32).reshape(1, 5, 5, 1)
    ring, centre = cell_grid.extract_neighbour_patches(features, 2, "pad")
    assert centre.shape == (1, 3, 3, 4)
    # The last cell holds the corner value 25 and three padding zeros.
    np.testing.assert_array_equal(centre[0, 2, 2], [25, 0, 0, 0])
    ring, centre = cell_grid.extract_neighbour_patches(features, 2, "crop")
    assert centre.shape == (1, 2, 2, 4)
    np.testing.assert_array_equal(centre[0, 1, 1], [13, 14, 18, 19])
    # Under "crop" the dropped row/column is not a neighbour either.
    assert not np.isin([5, 10, 15, 20, 21, 22, 23, 24, 25], ring.numpy()).any()
    with pytest.raises(ValueError, match="odd_size_rule"):
        cell_grid.extract_neighbour_patches(features, 2, "wrap")


def test_cells_to_map_lines_up_with_the_feature_map():
    cells = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)
    laid = cell_grid.cells_to_map(cells, 2, 5, 5).numpy()[0, :, :, 0]
    assert laid.shape == (5, 5)
    assert laid[0, 0] == laid[1, 1] == 1 and laid[4, 4] == 9 and laid[3, 2] == 5
    # After "crop" (2x2 cells of a 5x5 map) the dropped row/column gets zeros.
    laid = cell_grid.cells_to_map(cells[:, :2, :2], 2, 5, 5).numpy()[0, :, :, 0]
    assert laid[3, 3] == 5 and (laid[4] == 0).all() and (laid[:, 4] == 0).all()


def test_cell_ring_is_the_ring_of_extract_neighbour_patches():
    features = tf.random.stateless_normal([2, 7, 6, 3], seed=[3, 4])
    for rule in ("pad", "crop"):
        ring, _ = cell_grid.extract_neighbour_patches(features, 2, rule)
        cells = tf.nn.space_to_depth(cell_grid.align_to_cells(features, 2, rule), 2)
        np.testing.assert_array_equal(cell_grid.cell_ring(cells).numpy(), ring.numpy())


@pytest.mark.parametrize("border", ["zero", "replicate"])
def test_neighbour_conv_and_its_gradients_match_the_masked_convolution(border):
    cells = tf.random.stateless_normal([3, 5, 4, 6], seed=[1, 2])
    kernel = tf.random.stateless_normal([3, 3, 6, 7], seed=[5, 6])
    weights = tf.random.stateless_normal([3, 5, 4, 7], seed=[7, 8])
    mask = np.ones([3, 3, 1, 1], np.float32)
    mask[1, 1] = 0.0

    def loss_of(conv):
        with tf.GradientTape() as tape:
            tape.watch([cells, kernel])
            outputs = conv(cells, kernel)
            loss = tf.reduce_sum(outputs * weights)
        return outputs, tape.gradient(loss, [cells, kernel])

    fast, fast_grads = loss_of(lambda c, k: cell_grid.neighbour_conv(c, k, border))
    plain, plain_grads = loss_of(lambda c, k: tf.nn.conv2d(cell_grid.pad_cells(c, border), k * mask, 1, "VALID"))
    np.testing.assert_allclose(fast.numpy(), plain.numpy(), rtol=1e-5, atol=1e-5)
    for a, b in zip(fast_grads, plain_grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)
    # The centre tap does not take part: its gradient is exactly zero, and changing it changes nothing.
    assert np.all(fast_grads[1].numpy()[1, 1] == 0.0)
    moved = kernel + tf.constant(np.pad(np.ones([1, 1, 6, 7]), [[1, 1], [1, 1], [0, 0], [0, 0]]), tf.float32)
    np.testing.assert_allclose(cell_grid.neighbour_conv(cells, moved, border).numpy(), fast.numpy(), rtol=1e-5,
                               atol=1e-5)


def test_neighbour_conv_in_bfloat16_with_an_unknown_batch_size():
    # As traced for export (batch None) and run under mixed precision (bfloat16 kernel and cells).
    cells = tf.random.stateless_normal([3, 5, 4, 6], seed=[1, 2])
    kernel = tf.random.stateless_normal([3, 3, 6, 7], seed=[5, 6])

    @tf.function(input_signature=[tf.TensorSpec([None, 5, 4, 6], tf.bfloat16), tf.TensorSpec([3, 3, 6, 7], tf.bfloat16)])
    def fast(c, k):
        with tf.GradientTape() as tape:
            tape.watch([c, k])
            outputs = cell_grid.neighbour_conv(c, k, "replicate")
            loss = tf.reduce_sum(tf.cast(outputs, tf.float32) ** 2)
        return outputs, tape.gradient(loss, [c, k])

    def plain(c, k):
        with tf.GradientTape() as tape:
            tape.watch([c, k])
            outputs = tf.nn.conv2d(cell_grid.pad_cells(c, "replicate"), cell_grid.centre_masked(k), 1, "VALID")
            loss = tf.reduce_sum(outputs**2)
        return outputs, tape.gradient(loss, [c, k])

    # The float32 reference on the bfloat16-rounded inputs: only the products' rounding differs.
    c16, k16 = tf.cast(cells, tf.bfloat16), tf.cast(kernel, tf.bfloat16)
    outputs, grads = fast(c16, k16)
    ref_outputs, ref_grads = plain(tf.cast(c16, tf.float32), tf.cast(k16, tf.float32))
    assert outputs.dtype == tf.bfloat16 and outputs.shape == (3, 5, 4, 7)
    for a, b in zip([outputs] + grads, [ref_outputs] + ref_grads):
        a, b = tf.cast(a, tf.float32).numpy(), b.numpy()
        assert np.abs(a - b).max() <= 0.02 * np.abs(b).max()


def test_replicated_cell_border_continues_an_edge_wall():
    # A horizontal wall running into the left and right edges: with zero borders its end cells
    # have a neighbour no interior wall cell has; replicated, every wall cell sees the same ring.
    cells = np.zeros([1, 5, 6, 1], np.float32)
    cells[0, 2, :, 0] = 1.0
    zero = cell_grid.cell_ring(tf.constant(cells), "zero").numpy()[0, 2]
    replicated = cell_grid.cell_ring(tf.constant(cells), "replicate").numpy()[0, 2]
    assert not np.array_equal(zero[0], zero[2])
    np.testing.assert_array_equal(replicated[0], replicated[2])
    np.testing.assert_array_equal(replicated[-1], replicated[2])
    with pytest.raises(ValueError, match="border must be one of"):
        cell_grid.pad_cells(tf.constant(cells), "wrap")
