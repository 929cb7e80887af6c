"""permakey_tf.models.refine_net: the output offset of Transporter's decoder in every output mode."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from permakey_tf.models.transporter import Transporter

from tiny_transporter import TINY, transporter_frames


@pytest.mark.parametrize("output", ["bn_sigmoid", "sigmoid", "linear"])
def test_output_offset_decodes_a_zero_preactivation_to_the_colour(output):
    """With the output conv's kernel zeroed, the decoder's output is its offset alone: the colour
    set, for every output mode."""
    model = Transporter(TINY.replace(decoder_output=output))
    model(transporter_frames(0, 2))
    conv = model.decoder.output_conv
    conv.kernel.assign(tf.zeros_like(conv.kernel))
    colour = np.array([0.56, 0.28, 0.07])
    model.decoder.set_output_offset(colour)
    out = model.decoder(tf.random.uniform((2, 8, 8, 8)), training=False).numpy()
    np.testing.assert_allclose(out, np.broadcast_to(colour, out.shape), atol=1e-3)
