"""Results over seeds: permakey_tf.evaluation.seed_summary and experiments/over_seeds.py end to end."""

import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from permakey_tf.evaluation import seed_summary

ROOT = Path(__file__).resolve().parents[1]


def test_summarise_gives_mean_sample_sd_and_the_worst_seed():
    cell = seed_summary.summarise([(0, 0.5), (1, 0.2), (2, 0.8)])
    assert cell.mean == pytest.approx(0.5)
    assert cell.sd == pytest.approx(statistics.stdev([0.5, 0.2, 0.8]))
    assert (cell.worst, cell.worst_seed, cell.count) == (0.2, 1, 3)
    assert cell.format() == "0.50 ± 0.30 (worst 0.20, s1)"


def test_summarise_leaves_out_missing_values_and_says_so():
    cell = seed_summary.summarise([(0, None), (1, float("nan")), (2, 0.4)])
    assert (cell.mean, cell.count, cell.worst_seed) == (0.4, 1, 2)
    assert math.isnan(cell.sd) and cell.format() == "0.40 (worst 0.40, s2)"
    assert seed_summary.summarise([(0, None)]).format() == "-"


def _write_seed(folder, seed, f1, fixed_f1, player):
    out = folder / f"seed{seed}"
    out.mkdir(parents=True)
    model = {"f1": f1, "recall_class/Player": player, "detection_f1": f1 / 2, "probe_r2": 0.5}
    report = {"split": "test", "runs": [{"results": {"none": {"model": model, "fixed_layout": {"f1": fixed_f1}}}}]}
    (out / "metrics.json").write_text(json.dumps(report))
    (out / "protocol.json").write_text(json.dumps({"commit": "abcdef123", "machine": "amd-epyc-avx2",
                                                   "steps": {"evaluate": {"finished": "2026-12-06T10:00"}}}))


def test_table_cells_are_computed_from_the_seed_reports(tmp_path):
    folder = tmp_path / "pong" / "permakey"
    for seed, f1, fixed, player in ((0, 0.5, 0.1, 0.9), (1, 0.3, 0.1, 0.4), (2, 0.4, 0.2, 0.8)):
        _write_seed(folder, seed, f1, fixed, player)
    table = seed_summary.format_seeds_table(seed_summary.load_seed_reports([folder]))
    row = table.splitlines()[2]
    assert row.startswith("| pong/permakey | none | test | 0 1 2 | 0.40 ± 0.10 (worst 0.30, s1) |")
    assert "| 3.33 ± 1.53 (worst 2.00, s2) |" in row  # F1 / fixed: 5, 3, 2
    assert "Player 0.70 ± 0.26 (worst 0.40, s1)" in row
    assert row.endswith("| abcdef1; amd-epyc-avx2; 2026-12-06 |")  # reports without a dataset version
    for seed, version in ((0, "1.3.0"), (1, None)):
        path = folder / f"seed{seed}" / "metrics.json"
        report = json.loads(path.read_text())
        report["runs"][0]["dataset_version"] = version
        path.write_text(json.dumps(report))
    mixed = seed_summary.format_seeds_table(seed_summary.load_seed_reports([folder])).splitlines()[2]
    assert mixed.endswith("| abcdef1; amd-epyc-avx2; 2026-12-06; data 1.3.0, ? |")


def test_the_same_setting_from_two_report_roots_stays_two_rows(tmp_path):
    for root, f1 in (("2026-12-06_a", 0.5), ("2026-12-07_b", 0.3)):
        _write_seed(tmp_path / root / "pong" / "permakey", 0, f1, 0.1, 0.9)
    folders = [tmp_path / root / "pong" / "permakey" for root in ("2026-12-06_a", "2026-12-07_b")]
    rows = seed_summary.format_seeds_table(seed_summary.load_seed_reports(folders)).splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == ["| 2026-12-06_a/pong/permakey", "| 2026-12-07_b/pong/permakey"]
    assert "| 0.50 (worst 0.50, s0) |" in rows[0] and "| 0.30 (worst 0.30, s0) |" in rows[1]


def test_the_worst_seed_is_the_highest_where_lower_is_better():
    cell = seed_summary.summarise([(0, 0.5), (1, 0.2), (2, 0.8)], lower_is_better=True)
    assert (cell.mean, cell.worst, cell.worst_seed) == (pytest.approx(0.5), 0.8, 2)


def test_placement_table_gives_shares_and_every_class_coverage_over_seeds(tmp_path):
    folder = tmp_path / "frostbite" / "permakey-k15"
    for seed, hud, shield in ((0, 0.2, 0.5), (1, 0.4, 0.1)):
        _write_seed(folder, seed, 0.3, 0.1, 0.9)
        path = folder / f"seed{seed}" / "metrics.json"
        report = json.loads(path.read_text())
        report["runs"][0]["results"]["none"]["model"].update(
            {"num_keypoints": 15, "precision_any": 0.7, "precision": 0.3, "hud_share": hud,
             "border_share": 0.0, "coverage_class/Shield": shield})
        path.write_text(json.dumps(report))
    table = seed_summary.format_placement_table(seed_summary.load_seed_reports([folder]))
    row = table.splitlines()[2]
    assert row.startswith("| frostbite/permakey-k15 | none | test | 0 1 | 15 | 0.70 ± 0.00 (worst 0.70, s0) |")
    assert "| 0.30 ± 0.14 (worst 0.40, s1) |" in row  # HUD share: the worst is the highest
    assert row.endswith("| Shield 0.30 ± 0.28 (worst 0.10, s1) | - |")  # no formation: no rows

    for seed, top, spread in ((0, 0.6, 0.5), (1, 0.2, 0.1)):
        path = folder / f"seed{seed}" / "metrics.json"
        report = json.loads(path.read_text())
        report["runs"][0]["results"]["none"]["model"].update(
            {"coverage_row/Alien/0": top, "coverage_row/Alien/1": 0.1, "row_coverage_spread/Alien": spread})
        path.write_text(json.dumps(report))
    row = seed_summary.format_placement_table(seed_summary.load_seed_reports([folder])).splitlines()[2]
    assert row.endswith("| Alien/0 0.40 ± 0.28 (worst 0.20, s1); Alien/1 0.10 ± 0.00 (worst 0.10, s0); "
                        "Alien spread 0.30 ± 0.28 (worst 0.50, s0) |")  # the worst spread is the most uneven


def test_a_folder_without_seed_reports_is_refused_with_the_command_to_make_them(tmp_path):
    with pytest.raises(ValueError, match="over_seeds.py"):
        seed_summary.load_seed_reports([tmp_path / "pong" / "permakey"])


NOISE_MARKERS = ("cuInit", "cudart_stub", "I0000", "E0000", "W0000", "has no dataset_info.json",
                 "rebuild TensorFlow with the appropriate compiler flags")


def test_over_seeds_trains_evaluates_and_tabulates_each_seed_once(tmp_path):
    """Trained with --precision auto (the quick preset's default). Also: train.py and evaluate.py
    print no TensorFlow start-up noise (a first dataset build, no GPU) when the user has not asked
    for TensorFlow's own logging."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "PERMAKEY_VERBOSE")}
    command = [sys.executable, str(ROOT / "experiments" / "over_seeds.py"), "--game", "pong", "--preset", "smoke",
               "--seeds", "0", "1", "--no-probe", "--train-arg=--precision=auto",
               "--data-dir", str(tmp_path / "data"),
               "--logdir", str(tmp_path / "runs"), "--reports", str(tmp_path / "reports")]
    first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert first.stdout.count("Precision auto:") == 2
    noise = [line for line in (first.stdout + first.stderr).splitlines() if any(m in line for m in NOISE_MARKERS)]
    assert not noise, noise[:5]
    folder = tmp_path / "reports" / "pong" / "permakey"
    f1s = []
    for seed in (0, 1):
        protocol = json.loads((folder / f"seed{seed}" / "protocol.json").read_text())
        assert protocol["seed"] == seed and set(protocol["steps"]) == {"train", "curve", "evaluate"}
        curve = json.loads((folder / f"seed{seed}" / "quality_curve.json").read_text())["curve"]
        assert set(curve["f1"]) == {"1", "2"}  # the smoke preset's two epochs
        assert len(protocol["commit"]) == 40 and protocol["machine"]
        assert all(entry["commit"] == protocol["commit"] for entry in protocol["steps"].values())
        assert protocol["run_dir"].endswith(f"pong/permakey/smoke_none_seed{seed}")
        (run,) = json.loads((folder / f"seed{seed}" / "metrics.json").read_text())["runs"]
        assert run["seed"] == seed
        f1s.append(run["results"]["none"]["model"]["f1"])
    table_row = next(line for line in first.stdout.splitlines() if line.startswith("| pong/permakey |"))
    assert f"{statistics.fmean(f1s):.2f} ± {statistics.stdev(f1s):.2f}" in table_row
    # Both seeds evaluated together: their agreement, and the same per-seed numbers as alone.
    together = json.loads((folder / "agreement" / "metrics.json").read_text())
    assert [r["results"]["none"]["model"]["f1"] for r in together["runs"]] == pytest.approx(f1s)
    (agreement,) = together["seed_agreement"]
    assert agreement["labels"] == ["seed 0", "seed 1"] and agreement["random"] > 0
    assert json.loads((folder / "agreement" / "protocol.json").read_text())["seeds"] == [0, 1]
    assert "seed agreement, noise none (2 runs" in first.stdout
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "train.py" not in again.stdout and "evaluate.py" not in again.stdout
    assert again.stdout.count("already in") == 5  # two seeds' curves and evaluations, their agreement
    assert (folder / "curves" / "curves.md").exists() and (folder / "curves" / "curves.png").exists()

    # A final PointNet phase on seed 0's finished joint training: copied, not trained again.
    base_checkpoint = tmp_path / "runs" / "pong" / "permakey" / "smoke_none_seed0" / "checkpoints" / "best.keras"
    before = base_checkpoint.read_bytes()
    reuse = [arg for arg in command if not arg.startswith("--train-arg")]
    reuse[reuse.index("--seeds"):reuse.index("--no-probe")] = ["--seeds", "0"]
    reuse += ["--tag", "final", "--reuse-joint", "", "--set", "pointnet_final_steps=3"]
    final = subprocess.run(reuse, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    assert "Final PointNet phase: 3 steps" in final.stdout
    assert not [line for line in final.stdout.splitlines() if line.startswith("epoch ")], "no joint epoch again"
    copied = tmp_path / "runs" / "pong" / "permakey" / "smoke-final_none_seed0"
    assert (copied / "checkpoints" / "joint.keras").read_bytes() == before == base_checkpoint.read_bytes()
    assert json.loads((copied / "config.json").read_text())["model_config"]["pointnet_final_steps"] == 3
    assert (tmp_path / "reports" / "pong" / "permakey-final" / "seed0" / "metrics.json").exists()



def _over_seeds_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("over_seeds", ROOT / "experiments" / "over_seeds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("flags", [["--set", "learning_rate=1e-3"], [], ["--train-arg=--epochs=9"]])
def test_reusing_a_joint_training_allows_only_changes_after_it_under_a_new_tag(flags, capsys):
    over_seeds = _over_seeds_module()
    with pytest.raises(SystemExit):
        over_seeds.parse_args(["--game", "pong", "--reuse-joint", "", "--set", "pointnet_final_steps=600",
                               *(flags or ["--tag", ""]), *(["--tag", "x"] if flags else [])])
    assert "--reuse-joint" in capsys.readouterr().err
    args = over_seeds.parse_args(["--game", "pong", "--reuse-joint", "", "--tag", "final",
                                  "--set", "pointnet_final_steps=600"])
    assert args.reuse_joint == "" and args.settings == ["pointnet_final_steps=600"]


def test_a_run_cut_short_is_resumed_and_a_validation_report_has_its_own_folder(tmp_path, monkeypatch):
    over_seeds = _over_seeds_module()
    run = tmp_path / "run"
    (run / "backup" / "epoch-0002").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "best.keras").write_bytes(b"x")
    (run / "export").mkdir()
    (run / "config.json").write_text(json.dumps({"train": {"epochs": 6}}))
    (run / "backup" / "latest.json").write_text(json.dumps({"folder": "epoch-0002"}))
    state = {"epoch": 2, "callbacks": {"best": {"stopped_early": False}}}
    (run / "backup" / "epoch-0002" / "state.json").write_text(json.dumps(state))
    assert not over_seeds.run_finished(run)  # exported after a --time-limit stop: not finished
    commands = over_seeds.seed_commands(over_seeds.parse_args(["--game", "pong"]), 0, run, tmp_path)
    assert commands[0][0] == "train" and "--resume" in commands[0][1]
    state["callbacks"]["best"]["stopped_early"] = True
    (run / "backup" / "epoch-0002" / "state.json").write_text(json.dumps(state))
    assert over_seeds.run_finished(run)
    monkeypatch.chdir(tmp_path)
    args = over_seeds.parse_args(["--game", "pong", "--split", "validation", "--reports", "rel", "--logdir", "runs"])
    assert args.reports == str(tmp_path / "rel") and args.logdir == str(tmp_path / "runs")
    assert over_seeds.setting_folder(Path(args.reports), args) == tmp_path / "rel" / "pong" / "permakey-validation"


def test_reusing_a_run_whose_phase_ran_starts_the_copy_from_its_joint_checkpoint(tmp_path):
    over_seeds = _over_seeds_module()
    base = tmp_path / "runs" / "base"
    (base / "backup" / "epoch-0006").mkdir(parents=True)
    (base / "checkpoints").mkdir()
    (base / "export").mkdir()
    (base / "checkpoints" / "best.keras").write_bytes(b"refitted")
    (base / "checkpoints" / "joint.keras").write_bytes(b"joint")
    (base / "checkpoints" / "final_pointnet.json").write_text(json.dumps({"kept": "refit"}))
    (base / "config.json").write_text(json.dumps({"train": {"epochs": 6, "name": "base"},
                                                  "model_config": {"pointnet_final_steps": 600}}))
    (base / "backup" / "latest.json").write_text(json.dumps({"folder": "epoch-0006"}))
    (base / "backup" / "epoch-0006" / "state.json").write_text(json.dumps({"epoch": 6}))
    copy = tmp_path / "runs" / "copy"
    over_seeds.copy_joint_run(base, copy, ["pointnet_final_sigma_start=0.3"])
    assert (copy / "checkpoints" / "best.keras").read_bytes() == b"joint"
    assert not (copy / "checkpoints" / "joint.keras").exists()
    assert not (copy / "checkpoints" / "final_pointnet.json").exists()  # the copy's phase will run
    config = json.loads((copy / "config.json").read_text())
    assert config["model_config"] == {"pointnet_final_steps": 600, "pointnet_final_sigma_start": 0.3}
    assert config["train"]["name"] == "copy"
    # the base run keeps everything
    assert (base / "checkpoints" / "best.keras").read_bytes() == b"refitted"
    assert (base / "checkpoints" / "joint.keras").read_bytes() == b"joint"
    assert (base / "checkpoints" / "final_pointnet.json").exists()
