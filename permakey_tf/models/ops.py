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

import math

import tensorflow as tf

from permakey_tf.config import KEYPOINT_REDUCTIONS, PADDING_MODES

def _grid(size: int, dtype) -> tf.Tensor:
    """``linspace(-1, 1, size)`` as ``[size]``; a single cell sits at 0."""
    if size == 1:
        return tf.zeros([1], dtype)
    return tf.cast(tf.linspace(-1.0, 1.0, size), dtype)


def pointwise_conv(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
    """``x [B, H, W, C_in] @ kernel [C_in, C_out] + bias [C_out]`` at every position, as a 1x1
    convolution: what a Dense layer computes on the last axis, in the form oneDNN runs a little
    faster than the Dense layer's reshaped matrix product and into which TensorFlow fuses the
    bias and a following ReLU (docs/PERFORMANCE.md)."""
    return tf.nn.bias_add(tf.nn.conv2d(x, kernel[None, None], strides=1, padding="VALID"), bias)


def pad_for_same_conv(x: tf.Tensor, kernel: int, stride: int, mode: str) -> tf.Tensor:
    """Pads ``[B, H, W, C]`` by what a "same" convolution would add, with edge-derived values.

    The amounts are TensorFlow's "same" ones (total ``max((ceil(n/s) - 1) s + k - n, 0)``, the
    larger half after), so a "valid" convolution on the result has the shape and alignment of a
    "same" one. ``mode`` is ``"reflect"`` (mirror without repeating the edge row: ``c b | a b c``)
    or ``"symmetric"`` (mirror repeating it: ``b a | a b c``); ``"zero"`` gives zeros, as the "same"
    convolution itself.

    Zero padding gives a map's first and last rows and columns features no interior pixel has,
    in every frame alike; mirrored padding makes a constant background look the same at the
    border as inside.
    """
    if mode not in PADDING_MODES:
        raise ValueError(f"padding must be one of {PADDING_MODES}, got {mode!r}")
    amounts = [[0, 0]]
    for size in (x.shape[1], x.shape[2]):
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        amounts.append([total // 2, total - total // 2])
    amounts.append([0, 0])
    tf_mode = {"zero": "CONSTANT", "reflect": "REFLECT", "symmetric": "SYMMETRIC"}[mode]
    return tf.pad(x, amounts, mode=tf_mode)


def heatmaps_to_keypoints(heatmaps: tf.Tensor, reduction: str = "spatial") -> tf.Tensor:
    """Keypoint coordinates from heatmap logits: the expectation of a softmax over positions.

    ``"spatial"`` (default): one softmax over all ``H x W`` positions of a keypoint's map, and the
    expected ``(y, x)`` under it (a "spatial soft-argmax"). A single bright cell gives that
    cell's coordinates, so a small object can pull a keypoint onto itself.

    ``"marginal"`` (DeepMind's Transporter, the PermaKey reference code): for each axis, average
    the logits over the other axis, softmax along the axis, expectation over the grid. A whole
    bright row (or column) gives that row's coordinate, but a small blob raises its row's mean
    by only ``blob width / W`` of its logit, so a feature present in every frame along a whole
    row or column (a frame border, a score bar) steers the keypoint the same way in every frame.

    Args:
      heatmaps: ``[B, H, W, K]`` logits.
      reduction: ``"spatial"`` or ``"marginal"``.

    Returns:
      ``[B, K, 2]`` keypoints ``(y, x)`` in ``[-1, 1]`` (``linspace(-1, 1, size)`` grid), float32.
    """
    y_weights, x_weights = heatmap_marginals(heatmaps, reduction)
    ys, xs = _grid(y_weights.shape[1], tf.float32), _grid(x_weights.shape[1], tf.float32)
    y = tf.einsum("bhk,h->bk", y_weights, ys)
    x = tf.einsum("bwk,w->bk", x_weights, xs)
    return tf.stack([y, x], axis=-1)


def heatmap_marginals(heatmaps: tf.Tensor, reduction: str = "spatial") -> tuple[tf.Tensor, tf.Tensor]:
    """The per-axis weights :func:`heatmaps_to_keypoints` takes the expectation under.

    Args:
      heatmaps: ``[B, H, W, K]`` logits.
      reduction: ``"spatial"`` (the marginals of one softmax over all positions) or ``"marginal"``
        (a softmax per axis over the logits averaged along the other axis).

    Returns:
      ``(y_weights [B, H, K], x_weights [B, W, K])`` float32, each summing to 1 over its axis.
    """
    if reduction not in KEYPOINT_REDUCTIONS:
        raise ValueError(f"reduction must be one of {KEYPOINT_REDUCTIONS}, got {reduction!r}")
    heatmaps = tf.cast(heatmaps, tf.float32)
    if reduction == "marginal":
        return (tf.nn.softmax(tf.reduce_mean(heatmaps, axis=2), axis=1),
                tf.nn.softmax(tf.reduce_mean(heatmaps, axis=1), axis=1))
    weights = _spatial_softmax(heatmaps)
    return tf.reduce_sum(weights, axis=2), tf.reduce_sum(weights, axis=1)


def _spatial_softmax(heatmaps: tf.Tensor) -> tf.Tensor:
    """``[B, H, W, K]`` logits -> ``[B, H, W, K]`` weights, a softmax over each map's positions."""
    height, width = heatmaps.shape[1], heatmaps.shape[2]
    batch, channels = tf.shape(heatmaps)[0], heatmaps.shape[3]
    flat = tf.reshape(heatmaps, [batch, height * width, channels])
    return tf.reshape(tf.nn.softmax(flat, axis=1), [batch, height, width, channels])


MEAN_SHIFT_BACKGROUNDS = ("none", "median")


def mean_shift_keypoints(keypoints: tf.Tensor, maps: tf.Tensor, sigma: float, iterations: int = 1,
                         background: str = "median") -> tf.Tensor:
    """Moves each keypoint to the centre of mass of the maps under its own Gaussian window, a
    given number of times (mean shift with the keypoints' window as the kernel).

    A keypoint network places its heatmap's peak near an object, but where exactly it lands
    relative to the object is learned, and a softmax keypoint is pulled towards the map's centre.
    The maps themselves (PermaKey's error maps, which the keypoints are trained to reconstruct)
    hold the object's position to a fraction of a pixel in their intensities. One mean-shift step
    replaces the keypoint by the mass-weighted mean position of the map under
    ``exp(-d^2 / sigma^2)`` around it; repeated steps climb to the nearest mode of the map blurred
    by the window. A keypoint whose window holds no mass stays where it is. A step is not limited
    in length: a keypoint whose window holds only the faint tail of a distant blob moves onto that
    blob, so two keypoints near one object can end on it.

    Args:
      keypoints: ``[B, K, 2]`` ``(y, x)`` in ``[-1, 1]``.
      maps: ``[B, H, W, C]`` non-negative maps on the keypoints' grid (the channels are summed).
      sigma: window width in ``[-1, 1]`` units (the model's ``keypoint_sigma``).
      iterations: mean-shift steps, >= 0 (0 returns the keypoints unchanged).
      background: ``"median"`` (default) subtracts each image's median mass first and keeps what
        is above it, so a low, nearly uniform background does not drag the keypoint back towards
        its window's centre; ``"none"`` uses the maps as they are.

    Returns:
      ``[B, K, 2]`` ``(y, x)`` in ``[-1, 1]``, float32. No gradient flows to ``maps``'s background
      choice; the result is differentiable in the keypoints and the maps.
    """
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    if background not in MEAN_SHIFT_BACKGROUNDS:
        raise ValueError(f"background must be one of {MEAN_SHIFT_BACKGROUNDS}, got {background!r}")
    keypoints = tf.cast(keypoints, tf.float32)
    if iterations == 0:
        return keypoints
    mass = tf.reduce_sum(tf.cast(maps, tf.float32), axis=-1)  # [B, H, W]
    height, width = mass.shape[1], mass.shape[2]
    if background == "median":
        flat = tf.sort(tf.reshape(mass, [tf.shape(mass)[0], height * width]), axis=1)
        median = tf.stop_gradient(flat[:, (height * width) // 2])
        mass = tf.nn.relu(mass - median[:, None, None])
    ys, xs = _grid(height, tf.float32)[None, :, None], _grid(width, tf.float32)[None, :, None]
    for _ in range(iterations):
        # The window is a product of a row and a column profile, so its sums over the image are
        # two matrix products with the columns' profiles and one sum over the rows (no
        # [B, H, W, K] window is built).
        window_y, window_x = gaussian_profiles(keypoints, height, width, sigma)  # [B, H|W, K]
        mass_in_rows = tf.matmul(mass, window_x)  # [B, H, K]: sum over columns of mass x window
        x_mass_in_rows = tf.matmul(mass, window_x * xs)
        total = tf.reduce_sum(window_y * mass_in_rows, axis=1)  # [B, K]
        safe = tf.maximum(total, 1e-12)
        y = tf.reduce_sum(window_y * ys * mass_in_rows, axis=1) / safe
        x = tf.reduce_sum(window_y * x_mass_in_rows, axis=1) / safe
        keypoints = tf.where((total > 1e-6)[..., None], tf.stack([y, x], axis=-1), keypoints)
    return keypoints


def _extended_grid(size: int, margin: int, dtype) -> tf.Tensor:
    """The ``linspace(-1, 1, size)`` grid continued by ``margin`` cells on both sides."""
    grid = _grid(size, dtype)
    if margin == 0:
        return grid
    step = 2.0 / (size - 1) if size > 1 else 1.0
    outside = tf.cast(tf.range(1, margin + 1), dtype) * step
    return tf.concat([-1.0 - outside[::-1], grid, 1.0 + outside], axis=0)


def keypoints_to_gaussian_maps(
    keypoints: tf.Tensor, height: int, width: int, sigma: float, margin: int = 0
) -> tf.Tensor:
    """Renders isotropic Gaussian blobs ``exp(-((y-mu_y)^2 + (x-mu_x)^2) / sigma^2)``.

    No factor 2 in the exponent (as in the PermaKey reference): the value is ``e^-1`` at one sigma.
    Computed as the outer product of the row and column profiles (:func:`gaussian_profiles`).

    Args:
      keypoints: ``[B, K, 2]`` ``(y, x)`` in ``[-1, 1]``.
      height, width: size of the output map.
      sigma: standard width in ``[-1, 1]`` units (0.1 in the paper).
      margin: also render this many cells beyond every edge (the grid continued outwards).

    Returns:
      ``[B, height + 2 margin, width + 2 margin, K]`` in ``[0, 1]``, the keypoints' dtype.
    """
    window_y, window_x = gaussian_profiles(keypoints, height, width, sigma, margin)
    return window_y[:, :, None, :] * window_x[:, None, :, :]


def gaussian_profiles(
    keypoints: tf.Tensor, height: int, width: int, sigma: float, margin: int = 0
) -> tuple[tf.Tensor, tf.Tensor]:
    """The row and column factors of :func:`keypoints_to_gaussian_maps`:
    ``exp(-(y - mu_y)^2 / sigma^2)`` ``[B, height + 2 margin, K]`` and
    ``exp(-(x - mu_x)^2 / sigma^2)`` ``[B, width + 2 margin, K]``, whose outer product is the map."""
    dtype = keypoints.dtype
    inverse_variance = 1.0 / tf.cast(sigma, dtype) ** 2
    ys = _extended_grid(height, margin, dtype)[None, :, None]
    xs = _extended_grid(width, margin, dtype)[None, :, None]
    window_y = tf.exp(-((ys - keypoints[:, None, :, 0]) ** 2) * inverse_variance)
    window_x = tf.exp(-((xs - keypoints[:, None, :, 1]) ** 2) * inverse_variance)
    return window_y, window_x


def gaussian_blur(maps: tf.Tensor, sigma_pixels: float) -> tf.Tensor:
    """Blurs every channel of ``[B, H, W, C]`` with a normalised Gaussian of standard deviation
    ``sigma_pixels`` (separable, zeros beyond the edge, radius 3 sigma)."""
    radius = max(1, int(math.ceil(3.0 * sigma_pixels)))
    taps = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernel = tf.exp(-0.5 * tf.square(taps / sigma_pixels))
    kernel = tf.cast(kernel / tf.reduce_sum(kernel), maps.dtype)
    channels = maps.shape[-1]
    rows = tf.tile(tf.reshape(kernel, [-1, 1, 1, 1]), [1, 1, channels, 1])
    cols = tf.tile(tf.reshape(kernel, [1, -1, 1, 1]), [1, 1, channels, 1])
    blurred = tf.nn.depthwise_conv2d(maps, rows, [1, 1, 1, 1], "SAME")
    return tf.nn.depthwise_conv2d(blurred, cols, [1, 1, 1, 1], "SAME")


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


# Float frames may exceed [0, 1] by this much (rounding in a caller's own scaling).
FRAME_RANGE_TOLERANCE = 1e-3


def scale_frames(frames, image_size: int, model: str = "the model") -> tf.Tensor:
    """The frame-scaling rule of both models: uint8 ``[B, S, S, 3]`` in [0, 255] is divided by 255;
    float frames must already be in [0, 1] and are used as they are; anything else is refused.

    A float frame with a value outside [0, 1] (e.g. 0..255 pixels cast to float) raises
    ``ValueError`` (eager) or ``InvalidArgumentError`` (in a graph) saying to pass uint8 or divide
    by 255: it is never silently misread.

    Returns:
      float32 ``[B, S, S, 3]`` in [0, 1].

    Raises:
      ValueError naming the problem for a wrong rank, size, channel count or dtype.
    """
    frames = tf.convert_to_tensor(frames)
    shape = frames.shape
    expected = f"[batch, {image_size}, {image_size}, 3]"
    if shape.rank != 4:
        raise ValueError(
            f"{model} expects frames shaped {expected}, got rank {shape.rank} {shape}; "
            "add a batch axis for a single frame (frames[None])"
        )
    if shape[-1] != 3 or any(d is not None and d != image_size for d in shape[1:3]):
        raise ValueError(
            f"{model} expects frames shaped {expected}, got {shape}; resize the frames or set "
            "the config's image_size"
        )
    if frames.dtype == tf.uint8:
        return tf.cast(frames, tf.float32) / 255.0
    if not frames.dtype.is_floating:
        raise ValueError(
            f"{model} expects uint8 frames in [0, 255] or float frames in [0, 1], got {frames.dtype.name}"
        )
    frames = tf.cast(frames, tf.float32)
    message = (f"{model} got float frames outside [0, 1]: float frames must be scaled to [0, 1] "
               "(divide 0..255 pixels by 255), or pass the uint8 pixels themselves")
    low, high = -FRAME_RANGE_TOLERANCE, 1.0 + FRAME_RANGE_TOLERANCE
    if tf.executing_eagerly():
        if tf.size(frames) > 0 and (float(tf.reduce_min(frames)) < low or float(tf.reduce_max(frames)) > high):
            raise ValueError(f"{message} (values {float(tf.reduce_min(frames)):.4g} to "
                             f"{float(tf.reduce_max(frames)):.4g})")
        return frames
    checks = [tf.debugging.assert_greater_equal(frames, low, message=message),
              tf.debugging.assert_less_equal(frames, high, message=message)]
    with tf.control_dependencies(checks):
        return tf.identity(frames)


def empty_like_outputs(call_one, image_size: int) -> dict:
    """A model's outputs for an empty batch: ``call_one`` on one black uint8 frame, every output
    cut to 0 frames (a normalisation over an empty batch would fail or give NaN)."""
    outputs = call_one(tf.zeros([1, image_size, image_size, 3], tf.uint8))
    return {name: value[:0] for name, value in outputs.items()}
