"""permakey_tf.evaluation.predictions: a predictor over an evaluation set, in batches."""

import numpy as np
import pytest

from permakey_tf.evaluation import figures, predictions

SIZE = 84


def test_predict_batches_and_keeps_maps_for_figures_spread_over_the_set():
    frames = np.zeros([10, SIZE, SIZE, 3], np.uint8)
    frames[:, 0, 0, 0] = np.arange(10)  # frame i is marked i

    def predictor(batch):
        n = len(batch)
        marks = batch[:, 0, 0, 0].astype(float)
        return {"keypoints_pixels": np.full([n, 3, 2], 5.0),
                "gaussian_maps": np.ones([n, SIZE, SIZE, 3]) * marks[:, None, None, None],
                "error_maps": np.zeros([n, SIZE, SIZE, 2]) + marks[:, None, None, None]}

    pred = predictions.predict(predictor, frames, batch_size=4, map_frames=[1, 5, 9], progress=False)
    assert pred.keypoints_pixels.shape == (10, 3, 2)
    np.testing.assert_array_equal(pred.figure_gaussian_maps[:, 0, 0, 0], [1, 5, 9])
    np.testing.assert_array_equal(pred.figure_error_maps[:, 0, 0, 0], [1, 5, 9])
    assert pred.error_maps is None
    every = predictions.predict(predictor, frames, batch_size=4, progress=False, all_error_maps=True)
    assert every.error_maps.shape == (10, SIZE, SIZE, 2) and every.error_maps.dtype == np.float16
    np.testing.assert_array_equal(every.figure_error_maps[:, 0, 0, 0], figures.figure_indices(10))
    np.testing.assert_array_equal(figures.figure_indices(10), [0, 1, 3, 4, 5, 6, 8, 9])
    with pytest.raises(FloatingPointError, match="NaN"):
        predictions.predict(lambda b: {"keypoints_pixels": np.full([len(b), 1, 2], np.nan)}, frames,
                         progress=False)
