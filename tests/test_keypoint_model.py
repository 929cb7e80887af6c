"""permakey_tf.models.keypoint_model: the keypoint network both models build (the contract
itself is checked on every registered model in tests/test_registry.py)."""

import numpy as np
import pytest

from permakey_tf.config import PermaKeyConfig, TransporterConfig
from permakey_tf.models.keypoint_model import KeypointNet, keypoint_head


@pytest.mark.parametrize("second_stride, size", [(1, 42), (2, 21)])
def test_pointnet_heatmap_size(second_stride, size):
    pointnet = KeypointNet([4, 3, 3, 3], [4, 4, 4, 4], [1, second_stride, 2, 1], num_keypoints=5)
    heatmaps = pointnet(np.zeros((1, 84, 84, 2), np.float32))
    assert heatmaps.shape == (1, size, size, 5)


def test_keypoint_net_temperature_divides_the_logits():
    maps = np.random.default_rng(0).uniform(size=(2, 16, 16, 1)).astype(np.float32)
    kwargs = dict(kernels=[3], filters=[4], strides=[1], num_keypoints=3)
    plain = KeypointNet(**kwargs)
    hot = KeypointNet(**kwargs, temperature=0.25)
    for net in (plain, hot):
        net.build(maps.shape)
    hot.trunk.set_weights(plain.trunk.get_weights())
    hot.heatmap_conv.set_weights(plain.heatmap_conv.get_weights())
    base = plain(maps, training=False).numpy()
    np.testing.assert_allclose(hot(maps, training=False).numpy(), 4 * base, rtol=1e-5, atol=1e-6)
    assert not any("temperature" in v.path for v in hot.trainable_variables)
    # A layer config saved with the retired options switched off still loads; switched on, not.
    KeypointNet(**kwargs, learn_temperature=False, prior_width=0.0)
    with pytest.raises(ValueError, match="retired"):
        KeypointNet(**kwargs, learn_temperature=True)



def test_both_models_build_their_keypoint_network_from_the_shared_head_settings():
    """K, padding and temperature come from the config's keypoint-head fields for both models;
    the trunk from the arguments (PermaKey: its encoder shape with the PointNet's second stride)."""
    from permakey_tf.models.pointnet import build_pointnet

    permakey = PermaKeyConfig(num_keypoints=5, keypoint_padding="zero", heatmap_temperature=0.5,
                              pointnet_second_stride=1)
    pointnet = build_pointnet(permakey)
    assert (pointnet.num_keypoints, pointnet.padding, pointnet.temperature) == (5, "zero", 0.5)
    assert pointnet.strides[1] == 1 and pointnet.strides != tuple(permakey.encoder_strides)
    transporter = TransporterConfig(num_keypoints=3, heatmap_temperature=0.25)
    keypointer = keypoint_head(transporter, transporter.encoder_kernels, transporter.encoder_filters,
                               transporter.encoder_strides, transporter.norm, "keypointer")
    assert (keypointer.num_keypoints, keypointer.temperature, keypointer.norm) == (3, 0.25, transporter.norm)
    assert keypointer.strides == tuple(transporter.encoder_strides)
