"""Coverage of objects that come in rows (Space Invaders' alien formation, a row of shields): which
rows the keypoints sit on (pure numpy).

A class's count of covered objects says how many of them have a keypoint; it cannot tell whether
the keypoints spread over a formation or crowd one part of it. Here each frame's objects of a
class are grouped into rows by the height of their box centres (two centres at most
``row_tolerance`` pixels apart in y belong to the same row, chained through sorted heights), rows
numbered from the top of that frame's formation (row 0 is the highest row present). Pooled over
frames, row r's coverage is the share of its objects under at least one keypoint. The spread is
the highest minus the lowest coverage over the rows that the class has in at least
``min_row_frames`` of its frames: 0 when every row is covered alike, 1 when one row is always
covered and another never.

Only classes that form rows are reported: those whose rows hold at least two objects on average
(a lone player or a ball is one object per row and is left out).

Conventions (keypoints, boxes, hits): the docstring of permakey_tf.scoring.matching.
"""

from __future__ import annotations

import numpy as np

from permakey_tf.scoring.matching import ObjectSet, object_centres

# Rows of Space Invaders' aliens are about 7 px apart at 84x84 and the aliens of a row share their
# height, so 2 px joins a row and never two.
DEFAULT_ROW_TOLERANCE = 2.0


def frame_rows(heights: np.ndarray, row_tolerance: float = DEFAULT_ROW_TOLERANCE) -> np.ndarray:
    """Row index (0 = top) of each of one frame's objects, from their centres' heights.

    Args:
      heights: ``[m]`` y pixels (down is larger).
    Returns:
      ``[m]`` int: objects whose heights chain within ``row_tolerance`` share an index.
    """
    heights = np.asarray(heights, np.float64).reshape(-1)
    order = np.argsort(heights, kind="stable")
    gaps = np.diff(heights[order]) > row_tolerance
    rows = np.empty(len(heights), np.int64)
    rows[order] = np.concatenate([[0], np.cumsum(gaps)]) if len(heights) else []
    return rows


def row_coverage(
    hits: np.ndarray,
    objects: ObjectSet,
    image_size: int = 84,
    row_tolerance: float = DEFAULT_ROW_TOLERANCE,
    min_row_frames: float = 0.25,
) -> dict[str, float]:
    """Per class that forms rows, the coverage of each row and their spread.

    Args:
      hits: ``[N, K, M]`` bool, keypoint k of frame n on object m (matching.hit_matrix).
      objects: the N frames' objects (every valid object counts, targets or not).
      image_size: side of the frame in pixels.
      row_tolerance: pixels of height within which centres share a row.
      min_row_frames: a row enters the spread when the class has it in at least this share of the
        frames where the class is present.
    Returns:
      ``coverage_row/<class>/<r>`` for every row index seen, ``row_coverage_spread/<class>`` and
      ``rows/<class>`` (mean rows per frame where the class is present).
    """
    hits = np.asarray(hits, bool)
    if hits.ndim != 3 or hits.shape[0] != objects.num_frames or hits.shape[2] != objects.valid.shape[1]:
        raise ValueError(f"hits must be [N, K, M] = [{objects.num_frames}, K, {objects.valid.shape[1]}], "
                         f"got {hits.shape}")
    covered = hits.any(1)  # [N, M]
    heights = object_centres(objects.boxes, image_size)[..., 1]
    result: dict[str, float] = {}
    for label in np.unique(objects.labels[objects.valid]):
        objects_per_row: dict[int, int] = {}
        covered_per_row: dict[int, int] = {}
        frames_with_row: dict[int, int] = {}
        frames_present = rows_seen = 0
        for n in range(objects.num_frames):
            members = np.flatnonzero(objects.valid[n] & (objects.labels[n] == label))
            if not len(members):
                continue
            rows = frame_rows(heights[n, members], row_tolerance)
            frames_present += 1
            rows_seen += rows.max() + 1
            for r in np.unique(rows):
                in_row = members[rows == r]
                objects_per_row[r] = objects_per_row.get(r, 0) + len(in_row)
                covered_per_row[r] = covered_per_row.get(r, 0) + int(covered[n, in_row].sum())
                frames_with_row[r] = frames_with_row.get(r, 0) + 1
        if sum(objects_per_row.values()) < 2 * rows_seen:
            continue  # fewer than two objects per row on average: not a formation
        name = objects.class_name(label)
        coverage = {r: covered_per_row[r] / objects_per_row[r] for r in sorted(objects_per_row)}
        result.update({f"coverage_row/{name}/{r}": value for r, value in coverage.items()})
        common = [coverage[r] for r in coverage if frames_with_row[r] >= min_row_frames * frames_present]
        result[f"row_coverage_spread/{name}"] = float(max(common) - min(common)) if common else float("nan")
        result[f"rows/{name}"] = rows_seen / frames_present
    return result
