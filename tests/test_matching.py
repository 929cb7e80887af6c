"""permakey_tf.scoring.matching: which keypoints hit which objects."""

from permakey_tf.scoring import matching
from permakey_tf.scoring.matching import MetricSettings

from object_boxes import box, kps, one_frame


def test_box_edge_plus_dilation_hits_on_a_large_object():
    # Large box x in [10, 40], y in [10, 20]; centre (25, 15) is far from the test points.
    objects = one_frame([box(10, 10, 40, 20)])
    inside_dilation = kps((40.9, 15))  # 0.9 px right of the edge
    outside_dilation = kps((41.2, 15))
    assert matching.hit_matrix(inside_dilation, objects, MetricSettings())[0, 0, 0]
    assert not matching.hit_matrix(outside_dilation, objects, MetricSettings())[0, 0, 0]
    no_dilation = MetricSettings(box_dilation=0)
    assert not matching.hit_matrix(inside_dilation, objects, no_dilation)[0, 0, 0]
