"""The LSPN's straightforward patch-extraction form: the reference its fast form is tested and
timed against (tests/test_networks.py, ``bench/profile_step.py --lspn-forms``).

Each cell's 8 neighbouring cells are extracted as one vector ``[B, gh, gw, 8 p^2 C]`` (zero
outside the map) and multiplied by the first layer's weight in its Dense (ring) form; the layers
after it are the layer's own (:meth:`LocalSpatialPredictor.cell_layers`).
"""

from __future__ import annotations

import tensorflow as tf

from permakey_tf.models import cell_grid


def patch_form_prediction(lspn, features, training=None, batch_statistics=False):
    """``features [B, H, W, C]`` -> ``(prediction, target)``, both ``[B, gh, gw, p^2 C]``, computed
    patch by patch with the weights of the built ``LocalSpatialPredictor`` ``lspn``."""
    if not lspn.built:
        raise ValueError("patch_form_prediction needs a built LSPN: call it on the features first")
    aligned = cell_grid.align_to_cells(features, lspn.patch_size, lspn.odd_size_rule)
    target = tf.nn.space_to_depth(aligned, lspn.patch_size)
    if lspn.border == "zero":
        ring, _ = cell_grid.extract_neighbour_patches(features, lspn.patch_size, lspn.odd_size_rule)
    else:
        ring = cell_grid.cell_ring(target, lspn.border)
    first = tf.matmul(ring, tf.cast(lspn.ring_kernel(), ring.dtype))
    return lspn.cell_layers(first, training, batch_statistics), target
