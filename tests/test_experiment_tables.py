"""experiments/state_table.py, paper_table.py and ablation_from_reports.py: each number lands
under its own column, from the report it belongs to."""

import importlib.util
import json
from pathlib import Path

import pytest

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


def _write_setting_report(folder, seed, kernels, f1, fixed_f1, machine):
    """A seed report as over_seeds.py writes it: one run with its config and results."""
    out = folder / f"seed{seed}"
    out.mkdir(parents=True)
    config = {"model": "permakey", "game": "spaceinvaders", "seed": seed, "preset": "quick",
              "model_config": {"encoder_kernels": kernels, "num_keypoints": 25},
              "data": {"data_dir": f"/data/{machine}"},
              "train": {"name": f"quick-k{kernels[0]}_none_seed{seed}", "logdir": "/runs", "precision": "auto"}}
    results = {"none": {"model": {"f1": f1}, "fixed_layout": {"f1": fixed_f1}, "random": {"f1": None}}}
    run = {"label": f"spaceinvaders/permakey/{config['train']['name']}", "model": "permakey",
           "game": "spaceinvaders", "config": config, "results": results}
    (out / "metrics.json").write_text(
        json.dumps({"machine": machine, "commit": "abcdef1234", "created": "2026-12-08T01:00",
                                  "runs": [run]}))


def test_ablation_chart_from_reports_averages_each_settings_seeds_across_sessions(tmp_path, capsys):
    """Two settings written by different sessions (machines, data folders) chart together: F1 per
    kernel is the mean of that setting's seeds, the missing random F1 is a gap, and runs.md names
    both machines."""
    script = _script("ablation_from_reports")
    k3, k4 = tmp_path / "a" / "permakey-kernel3", tmp_path / "b" / "permakey-layers0"
    for seed, f1 in ((0, 0.2), (1, 0.4)):
        _write_setting_report(k3, seed, [3, 3, 3, 3], f1, 0.1, "amd-epyc-avx2")
    for seed, f1 in ((0, 0.5), (1, 0.7)):
        _write_setting_report(k4, seed, [4, 3, 3, 3], f1, 0.2, "amd-epyc-avx512")

    ((name, (labels, series), kwargs),) = script.ablation_charts(script.load_runs([k3, k4]))
    assert name == "ablation_spaceinvaders_permakey_encoder_kernels.png"
    assert labels == ["3, 3, 3, 3", "4, 3, 3, 3"]
    model, fixed, random = series.values()
    assert model == pytest.approx([0.3, 0.6])
    assert fixed == [0.1, 0.2] and all(v != v for v in random)  # NaN: no random F1 recorded
    assert kwargs["errors"][next(iter(series))][0] > 0.09  # the seeds' spread

    out = tmp_path / "chart"
    assert script.main([str(k3), str(k4), "--out", str(out)]) == 0
    assert (out / "figures" / name).stat().st_size > 1000
    runs_md = (out / "runs.md").read_text()
    assert "amd-epyc-avx2, amd-epyc-avx512 (mixed" in runs_md and runs_md.count("| spaceinvaders/") == 4


def test_ablation_from_reports_refuses_a_folder_without_seed_reports(tmp_path, capsys):
    script = _script("ablation_from_reports")
    with pytest.raises(SystemExit):
        script.main([str(tmp_path / "nothing"), "--out", str(tmp_path / "out")])
    assert "over_seeds.py" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written
