"""experiments/state_table.py: the per-run probe table puts each number under its own column."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _state_table():
    spec = importlib.util.spec_from_file_location("state_table", ROOT / "experiments" / "state_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _result(agent, mean):
    return {"f1": {}, "summary": {"agent_localization": agent, "mean_over_categories": mean}}


def test_per_run_table_reads_each_representation_and_baseline_into_its_column():
    results = {"majority": _result(0.10, 0.11), "random_cnn": _result(0.20, 0.21),
               "pixels": _result(0.30, 0.31)}
    for offset, name in enumerate(("keypoints", "keypoints_encoded", "keypoints_colours",
                                   "keypoints_features", "fixed_layout")):
        results[f"pong/permakey/r1:{name}"] = _result(0.40 + offset / 10, 0.41 + offset / 10)
    results["pong/transporter/t1:keypoints"] = _result(0.95, 0.96)  # its other rows are missing
    report = {"games": [{"game": "pong", "variables": ["a", "b"], "test_frames_kept": 139,
                         "published": {"RANDOM-CNN": 0.17, "ST-DIM": 0.81}, "results": results}]}
    header, _, permakey, transporter = _state_table().run_table([report]).splitlines()
    columns = [c.strip() for c in header.strip("|").split("|")]
    row = dict(zip(columns, (c.strip() for c in permakey.strip("|").split("|"))))
    assert row["run"] == "permakey r1"
    assert row["keypoints raw"] == "0.40 / 0.41" and row["feat."] == "0.70 / 0.71"
    assert row["fixed layout"] == "0.80 / 0.81"
    assert row["majority"] == "0.10 / 0.11" and row["random CNN"] == "0.20 / 0.21"
    assert row["pixels"] == "0.30 / 0.31"
    assert row["published"] == "0.17 / 0.81" and row["vars / test frames"] == "2 / 139"
    other = dict(zip(columns, (c.strip() for c in transporter.strip("|").split("|"))))
    assert other["keypoints raw"] == "0.95 / 0.96" and other["enc."] == "-"
