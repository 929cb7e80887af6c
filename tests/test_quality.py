"""permakey_tf.scoring.quality: the traced keypoint pass that scores a model."""

import keras
import numpy as np


def test_quality_model_outputs_equal_eager_keypoints_and_trace_once():
    from permakey_tf.config import PermaKeyConfig
    from permakey_tf.models.permakey import PermaKey
    from permakey_tf.scoring.quality import model_outputs, traced_predict_keypoints

    keras.utils.set_random_seed(0)
    frames = np.random.default_rng(1).integers(0, 256, (10, 84, 84, 3), dtype=np.uint8)
    model = PermaKey(PermaKeyConfig(encoder_filters=(4, 4, 4, 4), latent_dim=2, lsp_layers=(0,),
                                    lsp_hidden_widths=(8,), num_keypoints=3))
    eager = model.predict_keypoints(frames)
    first = model_outputs(model, frames, batch_size=4)  # batches of 4, 4, 2
    again = model_outputs(model, frames, batch_size=4)
    np.testing.assert_allclose(first["keypoints_pixels"], eager["keypoints_pixels"].numpy(), atol=1e-3)
    np.testing.assert_allclose(first["error_maps"], eager["error_maps"].numpy(), atol=2e-3)
    np.testing.assert_array_equal(again["keypoints_pixels"], first["keypoints_pixels"])
    assert traced_predict_keypoints(model).experimental_get_tracing_count() <= 2
