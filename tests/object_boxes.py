"""Hand-made object boxes on 84x84 frames, one-frame object sets and keypoints built from them,
shared by the scoring tests (not a test module)."""

import numpy as np

from permakey_tf.scoring.matching import ObjectSet

SIZE = 84


def box(x0, y0, x1, y1):
    """Pixel box (x from x0 to x1, y from y0 to y1) -> normalised (ymin, xmin, ymax, xmax)."""
    return [y0 / SIZE, x0 / SIZE, y1 / SIZE, x1 / SIZE]


# A small 2x2 object spanning x in [40, 42], y in [30, 32]: centre (41, 31).
SMALL = box(40, 30, 42, 32)


def one_frame(boxes, labels=None, hud=None, static=None, class_names=None):
    m = len(boxes)
    return ObjectSet.from_frames(
        [{
            "bbox": np.array(boxes, float).reshape(m, 4),
            "label": np.array(labels if labels is not None else [0] * m),
            "is_hud": np.array(hud if hud is not None else [False] * m),
            "is_static": np.array(static if static is not None else [False] * m),
        }],
        class_names,
    )


def kps(*points):
    return np.array([points], float)  # [1, K, 2]
