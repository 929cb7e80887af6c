"""The LSPN's grid of p x p cells: features aligned to cells, each cell's ring of eight
neighbour cells, the neighbour convolution (a 1x1 convolution over that ring, with its own weight
gradient that reuses the ring), and cell values laid back on the feature map. Pure tensor
functions, NHWC, no state.
"""

from __future__ import annotations

import tensorflow as tf


ODD_SIZE_RULES = ("pad", "crop")


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


LSP_BORDERS = ("zero", "replicate")


def pad_cells(cells: tf.Tensor, border: str) -> tf.Tensor:
    """One cell of border around a cell grid: zeros (``"zero"``, the reference) or copies of the
    edge cells (``"replicate"``).

    With zeros, a cell on the frame's edge has neighbours no interior cell has, so the LSPN
    predicts edge cells worse: a wall or background that meets the frame's edge lights up there
    in the error maps in every frame. Replicated edge cells continue the picture outwards.
    """
    if border not in LSP_BORDERS:
        raise ValueError(f"border must be one of {LSP_BORDERS}, got {border!r}")
    mode = "CONSTANT" if border == "zero" else "SYMMETRIC"  # symmetric by one = replicate
    return tf.pad(cells, [[0, 0], [1, 1], [1, 1], [0, 0]], mode=mode)


def _ring_of_padded(padded: tf.Tensor) -> tf.Tensor:
    """``[B, gh + 2, gw + 2, d]`` -> ``[B, gh, gw, 8 d]``: the 8 neighbours of every inner cell,
    row-major over the 3x3 block (centre skipped).

    One ``tf.gather`` of whole cells (``d`` values each) from the flattened grid: 8 slices and a
    concatenation would copy the data twice (docs/PERFORMANCE.md, item 10).
    """
    rows, cols, depth = padded.shape[1], padded.shape[2], padded.shape[3]
    gh, gw = rows - 2, cols - 2
    neighbour_offsets = [dy * cols + dx for dy in range(3) for dx in range(3) if (dy, dx) != (1, 1)]
    corners = tf.range(gh)[:, None] * cols + tf.range(gw)[None, :]  # each cell's top-left neighbour
    within_image = corners[:, :, None] + tf.constant(neighbour_offsets, tf.int32)  # [gh, gw, 8]
    batch = tf.shape(padded)[0]
    indices = within_image[None] + (tf.range(batch) * (rows * cols))[:, None, None, None]
    ring = tf.gather(tf.reshape(padded, [-1, depth]), tf.reshape(indices, [-1]))
    return tf.reshape(ring, [batch, gh, gw, 8 * depth])


def cell_ring(cells: tf.Tensor, border: str = "zero") -> tf.Tensor:
    """The 8 neighbours of every cell of a cell grid (outside it: :func:`pad_cells`).

    ``cells [B, gh, gw, d] -> [B, gh, gw, 8 d]``, neighbours in row-major order of the 3x3 cell
    grid (centre skipped). With ``cells = space_to_depth(align_to_cells(features, p), p)`` and
    ``border="zero"`` this is the ``ring`` of :func:`extract_neighbour_patches`.
    """
    return _ring_of_padded(pad_cells(cells, border))


def centre_masked(kernel: tf.Tensor) -> tf.Tensor:
    """``[3, 3, d, h]`` -> the same kernel with its centre tap ``[1, 1]`` set to zero."""
    mask = tf.constant([[1, 1, 1], [1, 0, 1], [1, 1, 1]], kernel.dtype)
    return kernel * mask[:, :, None, None]


def neighbour_conv(cells: tf.Tensor, kernel: tf.Tensor, border: str = "zero") -> tf.Tensor:
    """A 3x3 convolution over a cell grid that ignores the centre tap: every output cell is a
    linear map of its 8 neighbours only (the first Dense of an LSPN).

    ``cells [B, gh, gw, d]``, ``kernel [3, 3, d, h]`` (its centre tap is ignored: masked to zero)
    -> ``[B, gh, gw, h]``, stride 1, the grid bordered by :func:`pad_cells`. Equal to
    ``cell_ring(cells, border) @ reshape(kernel without its centre, [8 d, h])``.

    Computed in that ring form: the ``[B, gh, gw, 8 d]`` ring is built once (a copy, memory-bound)
    and multiplied with the 8-tap kernel as a 1x1 convolution, so the centre tap's multiply-adds
    (1/9 of a 3x3 convolution's) are never done; the backward pass reuses the ring for the kernel
    gradient ``ring^T @ dy``, one matrix product over every cell (faster than oneDNN's
    convolution weight gradient), so in training the ring is held from the forward to the
    backward pass (115 MB for the paper's layer 0 at batch 32 in bfloat16). docs/PERFORMANCE.md
    has the measurements; tests compare the values and both gradients with the masked
    convolution.
    """
    return _valid_neighbour_conv(pad_cells(cells, border), kernel)


def ring_kernel(kernel: tf.Tensor) -> tf.Tensor:
    """``[3, 3, d, h]`` -> ``[8 d, h]``: the 8 outer taps in :func:`cell_ring`'s order."""
    depth, width = kernel.shape[2], kernel.shape[3]
    taps = tf.reshape(kernel, [9, depth, width])
    return tf.reshape(tf.concat([taps[:4], taps[5:]], axis=0), [8 * depth, width])


@tf.custom_gradient
def _valid_neighbour_conv(padded: tf.Tensor, kernel: tf.Tensor):
    """:func:`neighbour_conv` on an already bordered grid ``[B, gh + 2, gw + 2, d]`` ("valid")."""
    ring = _ring_of_padded(padded)  # kept for the backward pass (not the padded grid: its shape)
    padded_shape = tf.shape(padded)
    outputs = tf.nn.conv2d(ring, ring_kernel(kernel)[None, None], strides=1, padding="VALID")
    # The gradient runs outside the caller's name scope: re-enter it so that its ops keep the
    # layer's name (profiles and bench/ FLOP counts attribute ops to layers by name).
    scope = tf.get_current_name_scope()

    def gradient(d_outputs):
        with tf.name_scope(f"{scope}/neighbour_conv_grad/" if scope else "neighbour_conv_grad/"):
            return _neighbour_conv_gradient(padded_shape, ring, kernel, d_outputs)

    return outputs, gradient


def _neighbour_conv_gradient(padded_shape, ring, kernel, d_outputs):
    """(d_padded, d_kernel) of :func:`_valid_neighbour_conv`, given its forward ring."""
    depth, width = kernel.shape[2], kernel.shape[3]
    flat_ring = tf.reshape(ring, [-1, 8 * depth])
    d_ring = tf.matmul(flat_ring, tf.reshape(d_outputs, [-1, width]), transpose_a=True)
    taps = tf.reshape(d_ring, [8, depth, width])
    centre = tf.zeros([1, depth, width], d_ring.dtype)
    d_kernel = tf.reshape(tf.concat([taps[:4], centre, taps[4:]], axis=0), [3, 3, depth, width])
    # Pruned from the graph when nothing needs it (an LSPN's input is stop-gradient).
    d_padded = tf.raw_ops.Conv2DBackpropInput(
        input_sizes=padded_shape, filter=centre_masked(kernel), out_backprop=d_outputs,
        strides=[1, 1, 1, 1], padding="VALID",
    )
    return d_padded, d_kernel


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
