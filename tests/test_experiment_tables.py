"""experiments/state_table.py and paper_table.py: each number lands under its own column, from the
report it belongs to."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _state_table():
    return _script("state_table")


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


def _columns(table_text):
    header, _, *rows = table_text.splitlines()
    columns = [c.strip() for c in header.strip("|").split("|")]
    return [dict(zip(columns, (c.strip() for c in line.strip("|").split("|")))) for line in rows]


def _keypoint_results(f1, fixed_f1, bar=None):
    model = {"f1": f1, "recall_class/Player": 0.9, "recall_class/Skull": 0.4, "hud_share": 0.05,
             "shift_gain": 1.01}
    results = {"model": model, "fixed_layout": {"f1": fixed_f1}, "random": {}}
    if bar is not None:
        model["bar_share"] = bar
        results["random"]["bar_share"] = 0.06
    return results


def test_paper_table_joins_each_evaluation_with_the_probe_on_its_own_frames():
    run = {"label": "mr/permakey/v1", "game": "mr", "model": "permakey",
           "config": {"data": {"noise": "vertical"}},
           "results": {"none": _keypoint_results(0.30, 0.10),
                       "vertical": _keypoint_results(0.20, 0.05, bar=0.03)}}
    clean_probe = {"noise": "none", "games": [{"game": "mr", "results": {
        "random_cnn": _result(0.81, 0.80), "pixels": _result(0.84, 0.60),
        "mr/permakey/v1:keypoints_encoded": _result(0.70, 0.50),
        "mr/permakey/v1:keypoints_features": _result(0.71, 0.51),
        "mr/permakey/v1:fixed_layout": _result(0.16, 0.11)}}]}
    bar_probe = {"noise": "vertical", "games": [{"game": "mr", "results": {
        "random_cnn": _result(0.26, 0.38), "pixels": _result(0.72, 0.56),
        "mr/permakey/v1:keypoints_encoded": _result(0.41, 0.30)}}]}
    text = _script("paper_table").table([{"runs": [run]}], [bar_probe, clean_probe])
    clean, noisy = _columns(text)
    assert (clean["trained"], clean["eval"], noisy["eval"]) == ("vertical", "none", "vertical")
    assert clean["f1 (fixed)"] == "0.300 (0.100)" and noisy["f1 (fixed)"] == "0.200 (0.050)"
    assert clean["player"] == "0.90" and clean["other objects"] == "Skull 0.40"
    assert clean["bar (area)"] == "-" and noisy["bar (area)"] == "0.03 (0.06)"
    assert clean["probe enc."] == "0.70 / 0.50" and clean["probe random CNN"] == "0.81 / 0.80"
    assert clean["probe feat."] == "0.71 / 0.51" and clean["probe fixed"] == "0.16 / 0.11"
    assert noisy["probe enc."] == "0.41 / 0.30" and noisy["probe random CNN"] == "0.26 / 0.38"
    assert noisy["probe pixels"] == "0.72 / 0.56" and noisy["probe feat."] == "-"


def test_results_doc_holds_the_table_that_the_committed_reports_give():
    """docs/notes/one-seed-results.md holds, for each report folder under docs/results/ (one machine and code
    version each), paper_table.py's output over that folder's reports: a report or a table edited
    by hand without the other fails here."""
    import json

    folders = sorted({p.parent.parent for p in (ROOT / "docs" / "results").glob("*/*/metrics.json")})
    assert folders, "docs/results/ holds no evaluate.py reports"
    document = (ROOT / "docs" / "notes" / "one-seed-results.md").read_text()
    for folder in folders:
        reports = sorted(folder.glob("*/metrics.json"))
        probes = sorted(folder.glob("*/probe.json"))
        table = _script("paper_table").table([json.loads(p.read_text()) for p in reports],
                                             [json.loads(p.read_text()) for p in probes])
        runs = sum(len(json.loads(p.read_text())["runs"]) for p in reports)
        assert len(table.splitlines()) >= 2 + runs
        assert table in document, f"the table of {folder.name} is not in docs/notes/one-seed-results.md"
