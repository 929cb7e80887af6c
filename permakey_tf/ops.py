"""Pure tensor functions shared by PermaKey and Transporter. No state, no Keras layers.

Conventions (see docs/ARCHITECTURE.md):
  * Feature maps and images are NHWC.
  * Keypoints inside the models are ``[B, K, 2]`` tensors of ``(y, x)`` in ``[-1, 1]``; ``-1`` is the
    centre of the first row / column of the map they came from, ``+1`` the centre of the last
    (the ``linspace(-1, 1, size)`` grid of DeepMind's Transporter and of the PermaKey reference).
  * Public pixel coordinates are ``(x, y)`` in the 84x84 frame, x right, y down, continuous: pixel
    ``(row i, column j)`` spans ``[j, j+1) x [i, i+1)`` and has its centre at ``(j + 0.5, i + 0.5)``.
"""

from __future__ import annotations

import tensorflow as tf

ODD_SIZE_RULES = ("pad", "crop")


def _grid(size: int, dtype) -> tf.Tensor:
    """``linspace(-1, 1, size)`` as ``[size]``; a single cell sits at 0."""
    if size == 1:
        return tf.zeros([1], dtype)
    return tf.cast(tf.linspace(-1.0, 1.0, size), dtype)


def extract_neighbour_patches(
    features: tf.Tensor, patch_size: int, odd_size_rule: str = "pad"
) -> tuple[tf.Tensor, tf.Tensor]:
    """Splits a feature map into p x p cells and returns each cell with its 8 neighbours.

    The map is zero-padded by ``p`` on every side and read in ``3p x 3p`` windows with stride ``p``;
    every non-overlapping ``p x p`` cell is a centre, its 8 surrounding cells the context. Cells
    outside the map are zeros.

    Odd sizes (H or W not a multiple of p): ``"pad"`` (default) zero-pads the bottom / right edge up
    to the next multiple of p, so every feature takes part (21 -> 11 cells for p = 2);
    ``"crop"`` drops the remainder as the reference code does (21 -> 10 cells).

    Args:
      features: ``[B, H, W, C]``.
      patch_size: p >= 1.
      odd_size_rule: ``"pad"`` or ``"crop"``.

    Returns:
      ``(ring, centre)``: ring ``[B, gh, gw, 8 p^2 C]``, the 8 neighbour cells in row-major order of
      the 3x3 cell grid (centre skipped), each cell flattened as (row, column, channel);
      centre ``[B, gh, gw, p^2 C]`` flattened the same way. ``gh = ceil(H/p)`` for "pad",
      ``floor(H/p)`` for "crop"; likewise gw.
    """
    if odd_size_rule not in ODD_SIZE_RULES:
        raise ValueError(f"odd_size_rule must be one of {ODD_SIZE_RULES}, got {odd_size_rule!r}")
    p = int(patch_size)
    if p < 1:
        raise ValueError(f"patch_size must be >= 1, got {patch_size}")
    features = align_to_cells(features, p, odd_size_rule)
    channels = features.shape[-1]
    padded = tf.pad(features, [[0, 0], [p, p], [p, p], [0, 0]])
    windows = tf.image.extract_patches(
        padded, sizes=[1, 3 * p, 3 * p, 1], strides=[1, p, p, 1], rates=[1, 1, 1, 1], padding="VALID"
    )
    batch = tf.shape(windows)[0]
    gh, gw = windows.shape[1], windows.shape[2]
    if gh is None:
        gh, gw = tf.shape(windows)[1], tf.shape(windows)[2]
    # [B, gh, gw, 3, p, 3, p, C] -> [B, gh, gw, 3, 3, p, p, C]: 9 cells of the 3x3 cell grid.
    cells = tf.reshape(windows, [batch, gh, gw, 3, p, 3, p, channels])
    cells = tf.transpose(cells, [0, 1, 2, 3, 5, 4, 6, 7])
    cells = tf.reshape(cells, [batch, gh, gw, 9, p * p * channels])
    centre = cells[:, :, :, 4]
    ring = tf.concat([cells[:, :, :, :4], cells[:, :, :, 5:]], axis=3)
    ring = tf.reshape(ring, [batch, gh, gw, 8 * p * p * channels])
    return ring, centre


def cell_ring(cells: tf.Tensor) -> tf.Tensor:
    """The 8 neighbours of every cell of a cell grid, zeros outside it.

    ``cells [B, gh, gw, d] -> [B, gh, gw, 8 d]``, neighbours in row-major order of the 3x3 cell
    grid (centre skipped). With ``cells = space_to_depth(align_to_cells(features, p), p)`` this is
    the ``ring`` of :func:`extract_neighbour_patches`.
    """
    gh, gw = cells.shape[1], cells.shape[2]
    padded = tf.pad(cells, [[0, 0], [1, 1], [1, 1], [0, 0]])
    neighbours = [
        padded[:, dy : dy + gh, dx : dx + gw, :]
        for dy in range(3)
        for dx in range(3)
        if (dy, dx) != (1, 1)
    ]
    return tf.concat(neighbours, axis=-1)


_CENTRE_MASK = ((1.0, 1.0, 1.0), (1.0, 0.0, 1.0), (1.0, 1.0, 1.0))


@tf.custom_gradient
def neighbour_conv(cells: tf.Tensor, kernel: tf.Tensor):
    """A 3x3 convolution over a cell grid that ignores the centre tap: every output cell is a
    linear map of its 8 neighbours only (the first Dense of an LSPN).

    ``cells [B, gh, gw, d]``, ``kernel [3, 3, d, h]`` (its centre tap is ignored: masked to zero)
    -> ``[B, gh, gw, h]``, stride 1, "same" zero padding. Equal to
    ``cell_ring(cells) @ reshape(kernel without its centre, [8 d, h])``.

    Computed as one convolution forward (no ``8 d``-wide tensor kept for the backward pass). Its
    kernel gradient is computed as ``cell_ring(cells)^T @ dy``, one matrix product over every cell
    with the ring rebuilt on the fly: 1.3-1.6x faster than oneDNN's convolution weight gradient
    here, and it skips the centre tap's multiply-adds (whose gradient is zero).
    docs/PERFORMANCE.md has the measurements; tests compare both gradients with autodiff.
    """
    mask = tf.constant(_CENTRE_MASK, kernel.dtype)[:, :, None, None]
    masked = kernel * mask
    outputs = tf.nn.conv2d(cells, masked, strides=1, padding="SAME")
    # The gradient runs outside the caller's name scope: re-enter it so that its ops keep the
    # layer's name (profiles and bench/ FLOP counts attribute ops to layers by name).
    scope = tf.get_current_name_scope()

    def gradient(d_outputs):
        with tf.name_scope(f"{scope}/neighbour_conv_grad/" if scope else "neighbour_conv_grad/"):
            return _neighbour_conv_gradient(cells, kernel, masked, d_outputs)

    return outputs, gradient


def _neighbour_conv_gradient(cells, kernel, masked, d_outputs):
    """(d_cells, d_kernel) of :func:`neighbour_conv`."""
    depth, width = kernel.shape[2], kernel.shape[3]
    ring = tf.reshape(cell_ring(cells), [-1, 8 * depth])
    d_ring = tf.matmul(ring, tf.reshape(d_outputs, [-1, width]), transpose_a=True)
    taps = tf.reshape(d_ring, [8, depth, width])
    centre = tf.zeros([1, depth, width], d_ring.dtype)
    d_kernel = tf.reshape(tf.concat([taps[:4], centre, taps[4:]], axis=0), [3, 3, depth, width])
    # Pruned from the graph when nothing needs it (an LSPN's input is stop-gradient).
    d_cells = tf.raw_ops.Conv2DBackpropInput(
        input_sizes=tf.shape(cells), filter=masked, out_backprop=d_outputs,
        strides=[1, 1, 1, 1], padding="SAME",
    )
    return d_cells, d_kernel


def align_to_cells(features: tf.Tensor, patch_size: int, odd_size_rule: str = "pad") -> tf.Tensor:
    """Pads (bottom/right, zeros) or crops ``[B, H, W, C]`` so that H and W are multiples of p."""
    p = int(patch_size)
    height, width = features.shape[1], features.shape[2]
    if odd_size_rule == "pad":
        return tf.pad(features, [[0, 0], [0, (-height) % p], [0, (-width) % p], [0, 0]])
    return features[:, : height - height % p, : width - width % p, :]


def cells_to_map(cell_values: tf.Tensor, patch_size: int, height: int, width: int) -> tf.Tensor:
    """Spreads per-cell values back onto the feature map they came from.

    Each cell value fills its p x p block; the result is cropped (after "pad") or zero-extended
    (after "crop") to ``height x width`` so it lines up with the feature map pixel for pixel.

    Args:
      cell_values: ``[B, gh, gw, C]``.
      patch_size: p.
      height, width: the feature map's size.

    Returns:
      ``[B, height, width, C]``.
    """
    p = int(patch_size)
    up = tf.repeat(tf.repeat(cell_values, p, axis=1), p, axis=2)
    up = up[:, :height, :width, :]
    pad_h = height - up.shape[1]
    pad_w = width - up.shape[2]
    if pad_h or pad_w:
        up = tf.pad(up, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])
    return up


def heatmaps_to_keypoints(heatmaps: tf.Tensor) -> tf.Tensor:
    """Keypoint coordinates from heatmap logits, as in DeepMind's Transporter.

    For each axis: average the logits over the other axis, softmax along the axis, and take the
    expectation over ``linspace(-1, 1, size)``. A whole bright row (or column) gives that row's
    coordinate; a single bright pixel does not reach the corner (softmax of averaged logits).

    Args:
      heatmaps: ``[B, H, W, K]`` logits.

    Returns:
      ``[B, K, 2]`` keypoints ``(y, x)`` in ``[-1, 1]``, float32.
    """
    heatmaps = tf.cast(heatmaps, tf.float32)
    height, width = heatmaps.shape[1], heatmaps.shape[2]
    y_weights = tf.nn.softmax(tf.reduce_mean(heatmaps, axis=2), axis=1)  # [B, H, K]
    x_weights = tf.nn.softmax(tf.reduce_mean(heatmaps, axis=1), axis=1)  # [B, W, K]
    y = tf.einsum("bhk,h->bk", y_weights, _grid(height, tf.float32))
    x = tf.einsum("bwk,w->bk", x_weights, _grid(width, tf.float32))
    return tf.stack([y, x], axis=-1)


def keypoints_to_gaussian_maps(
    keypoints: tf.Tensor, height: int, width: int, sigma: float
) -> tf.Tensor:
    """Renders isotropic Gaussian blobs ``exp(-((y-mu_y)^2 + (x-mu_x)^2) / sigma^2)``.

    No factor 2 in the exponent (as in the PermaKey reference): the value is ``e^-1`` at one sigma.

    Args:
      keypoints: ``[B, K, 2]`` ``(y, x)`` in ``[-1, 1]``.
      height, width: size of the output map.
      sigma: standard width in ``[-1, 1]`` units (0.1 in the paper).

    Returns:
      ``[B, height, width, K]`` in ``[0, 1]``, the keypoints' dtype.
    """
    dtype = keypoints.dtype
    mu_y = keypoints[:, :, 0][:, None, None, :]  # [B, 1, 1, K]
    mu_x = keypoints[:, :, 1][:, None, None, :]
    ys = _grid(height, dtype)[None, :, None, None]
    xs = _grid(width, dtype)[None, None, :, None]
    squared = (ys - mu_y) ** 2 + (xs - mu_x) ** 2
    return tf.exp(-squared / tf.cast(sigma, dtype) ** 2)


def normalize_maps(maps: tf.Tensor, epsilon: float = 1e-6) -> tf.Tensor:
    """Min-max normalises each image's channels to ``[0, 1]``; a constant map becomes zeros (no NaN).

    Args:
      maps: ``[B, H, W, C]``.
      epsilon: added to the range in the denominator.

    Returns:
      ``[B, H, W, C]``, same dtype.
    """
    low = tf.reduce_min(maps, axis=[1, 2], keepdims=True)
    high = tf.reduce_max(maps, axis=[1, 2], keepdims=True)
    return (maps - low) / (high - low + tf.cast(epsilon, maps.dtype))


def keypoints_to_pixels(keypoints: tf.Tensor, image_size: int = 84) -> tf.Tensor:
    """``[B, K, 2]`` ``(y, x)`` in ``[-1, 1]`` -> ``[B, K, 2]`` ``(x, y)`` continuous pixel coordinates.

    ``-1`` maps to the centre of the first pixel (0.5), ``+1`` to that of the last (size - 0.5).
    """
    keypoints = tf.cast(keypoints, tf.float32)
    scale = (image_size - 1) / 2.0
    pixels = (keypoints + 1.0) * scale + 0.5
    return tf.reverse(pixels, axis=[-1])


def pixels_to_keypoints(pixels: tf.Tensor, image_size: int = 84) -> tf.Tensor:
    """Inverse of :func:`keypoints_to_pixels`: ``(x, y)`` pixels -> ``(y, x)`` in ``[-1, 1]``."""
    pixels = tf.cast(pixels, tf.float32)
    scale = (image_size - 1) / 2.0
    return tf.reverse((pixels - 0.5) / scale - 1.0, axis=[-1])


def _mix32(x: tf.Tensor) -> tf.Tensor:
    """MurmurHash3's 32-bit finaliser (avalanche mix) on uint32."""
    for shift, multiplier in ((16, 0x85EBCA6B), (13, 0xC2B2AE35)):
        x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(shift, tf.uint32)))
        x = x * tf.constant(multiplier, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(16, tf.uint32)))


def hashed_normal(shape, seed: tf.Tensor) -> tf.Tensor:
    """Standard normal float32 samples from a counter-based integer hash and Box-Muller.

    Plain integer arithmetic, so graph mode and XLA give bit-identical samples (TensorFlow's
    stateless Philox kernels differ between the two), which keeps ``jit_compile`` from changing
    a model's losses. Not for cryptography; fine for VAE reparameterisation noise.

    Args:
      shape: the output shape (a list or 1-D int tensor).
      seed: ``[2]`` integer tensor (e.g. a ``keras.random.SeedGenerator`` state).

    Returns:
      float32 tensor of ``shape``.
    """
    count = tf.reduce_prod(tf.cast(shape, tf.int32))
    key = tf.cast(tf.math.floormod(tf.cast(seed, tf.int64), 2**32), tf.uint32)
    counter = tf.cast(tf.range(2 * count), tf.uint32)
    bits = _mix32(counter * tf.constant(0x9E3779B9, tf.uint32) + key[0])
    bits = _mix32(tf.bitwise.bitwise_xor(bits, key[1]))
    top24 = tf.cast(tf.bitwise.right_shift(bits, tf.constant(8, tf.uint32)), tf.float32)
    uniform = (top24 + 0.5) / 16777216.0  # in (0, 1)
    radius = tf.sqrt(-2.0 * tf.math.log(uniform[:count]))
    return tf.reshape(radius * tf.cos(6.283185307179586 * uniform[count:]), shape)
