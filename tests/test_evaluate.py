"""evaluate.py: refuses non-run folders, reports model and baselines, draws the figures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

import evaluate  # noqa: E402
from permakey_tf.scoring import baselines, matching, metrics
from permakey_tf.evaluation import figures, report, predictions
from permakey_tf.training import run_flags, runs  # noqa: E402

SIZE = 84


def _run_cli(*args, timeout=120):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, str(ROOT / "evaluate.py"), *map(str, args)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_refuses_a_folder_without_config(tmp_path):
    result = _run_cli(tmp_path, "--no-progress")
    assert result.returncode == 2
    assert "not a run folder" in result.stderr and "config.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_refinement_steps_are_refused_for_a_transporter_run_before_anything_loads(tmp_path, capsys):
    folders = []
    for model in ("permakey", "transporter"):
        folder = tmp_path / model
        folder.mkdir()
        runs.write_config(run_flags.resolve_config({"game": "pong", "preset": "smoke", "model": model,
                                                   "logdir": str(tmp_path)}), folder)
        (folder / "export" / "1").mkdir(parents=True)
        (folder / "export" / "1" / "saved_model.pb").write_bytes(b"")
        folders.append(folder)
    assert evaluate.main([*map(str, folders), "--refinement-steps", "0", "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "--refinement-steps" in error and str(folders[1]) in error and str(folders[0]) not in error
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_rejects_bad_flags():
    with pytest.raises(SystemExit):
        evaluate.parse_args(["somewhere", "--noise", "diagonal"])
    assert evaluate.parse_args(["a", "--noise", "none,both"]).noise == ["none", "both"]
    with pytest.raises(SystemExit):
        evaluate.parse_args(["somewhere", "--refinement-steps", "-1"])
    assert evaluate.parse_args(["a", "--refinement-steps", "0"]).refinement_steps == 0


def _synthetic_eval_set(n=12):
    """A white 4x4 square moving right on black; one episode."""
    frames = np.zeros([n, SIZE, SIZE, 3], np.uint8)
    objects = []
    for t in range(n):
        x = 10 + 3 * t
        frames[t, 40:44, x:x + 4] = 255
        objects.append({"bbox": np.array([[40 / SIZE, x / SIZE, 44 / SIZE, (x + 4) / SIZE]]),
                        "label": np.array([0])})
    return predictions.EvalSet(frames=frames, clean=frames, bar_masks=np.zeros([n, SIZE, SIZE], bool),
                            objects=matching.ObjectSet.from_frames(objects, ("Player",)),
                            episode_ids=np.zeros(n, int), steps=np.arange(n), noise="none")


def _entry(data, model, seed, k, name, tracking):
    n = len(data.frames)
    if tracking:  # keypoint 0 follows the square, the rest stand still
        kps = np.tile(np.linspace(10, 70, k)[None, :, None], (n, 1, 2))
        kps[:, 0] = [[12 + 3 * t, 42] for t in range(n)]
    else:
        kps = np.tile(np.linspace(10, 70, k)[None, :, None], (n, 1, 2)) + seed
    config = {"model": model, "game": "pong", "seed": seed, "preset": "smoke",
              "model_config": {"num_keypoints": k, "keypoint_sigma": 0.1,
                               **({"lsp_layers": [0]} if model == "permakey" else {})},
              "data": {"test_frames": 16}, "train": {"name": name, "logdir": "runs"}}
    shown = len(figures.figure_indices(len(kps)))
    pred = predictions.Predictions(kps, np.zeros([shown, SIZE, SIZE, k]),
                                np.random.default_rng(0).uniform(size=[shown, SIZE, SIZE, 1])
                                if model == "permakey" else None)
    results = metrics.evaluate_with_baselines(kps, data.objects, frames=data.frames,
                                              episode_ids=data.episode_ids, steps=data.steps)
    return {"label": f"pong/{model}/{name}", "path": name, "model": model, "game": "pong",
            "config": config, "data_key": ("pong", "{}"), "results": {"none": results},
            "predictions": {"none": pred}}


def test_tables_and_figures_from_synthetic_runs(tmp_path):
    data = _synthetic_eval_set()
    entries = [
        _entry(data, "permakey", 0, 4, "s0", tracking=True),
        _entry(data, "permakey", 1, 4, "s1", tracking=True),
        _entry(data, "permakey", 0, 6, "k6", tracking=True),
        _entry(data, "transporter", 0, 4, "t0", tracking=False),
    ]
    results = entries[0]["results"]["none"]
    # The tracking keypoint beats the model's own fixed layout on recall and tracking.
    assert results["model"]["recall"] == 1.0 > results["fixed_layout"]["recall"]
    assert results["model"]["tracking_error_relative"] == pytest.approx(0.0, abs=1e-9)

    table = report.format_results_table("pong/permakey/s0", "none", results)
    assert "fixed_layout" in table and "frame_difference" in table
    f1_line = next(line for line in table.splitlines() if line.startswith("f1 "))
    assert f"{results['model']['f1']:.3f}" in f1_line and f"{results['random']['f1']:.3f}" in f1_line
    summary = report.format_summary(entries)
    assert len(summary.splitlines()) == 1 + len(entries)
    # s0 and s1 differ only by seed and place the same keypoints: one agreement, distance 0; K 6
    # and the Transporter run are in no seed group.
    (agreement,) = evaluate.seed_agreements(entries, seed=0)
    assert agreement["runs"] == ["pong/permakey/s0", "pong/permakey/s1"] and agreement["noise"] == "none"
    assert agreement["labels"] == ["seed 0", "seed 1"]
    assert agreement["model"] == 0.0 and agreement["random"] > 5.0
    assert "seed agreement, noise none (2 runs" in report.format_seed_agreement(agreement)

    written = figures.draw_figures(entries, {(("pong", "{}"), "none"): data}, tmp_path)
    names = {Path(p).name for p in written}
    assert "figure2_pong_none.png" in names
    assert "figure3_pong_permakey_seeds.png" in names  # s0 and s1 differ only by seed
    assert "ablation_pong_permakey_num_keypoints.png" in names  # K 4 vs 6
    assert "pong_permakey_s0_figure4_gaussian_windows.png" in names
    assert not any("transporter_seeds" in n for n in names)  # one Transporter seed only
    for path in written:
        assert (tmp_path / path).stat().st_size > 1000


# ---------------------------------------------------------------------------------------------
# End to end on a smoke run (needs train.py).

TRAIN = ROOT / "train.py"


@pytest.mark.skipif(not TRAIN.exists(), reason="train.py does not exist yet (issue 5); the "
                    "end-to-end evaluate test needs a smoke run from it")
def test_end_to_end_on_a_smoke_run(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    data_dir, logdir = tmp_path / "data", tmp_path / "runs"
    train = subprocess.run(
        [sys.executable, str(TRAIN), "--game", "pong", "--model", "permakey", "--preset", "smoke",
         "--data-dir", str(data_dir), "--logdir", str(logdir), "--name", "smoke", "--seed", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    run_dir = logdir / "pong" / "permakey" / "smoke"
    out = tmp_path / "eval"
    result = _run_cli(run_dir, "--out", out, "--noise", "none,vertical", "--no-progress", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "metrics.json").read_text())
    assert report["machine"] and report["cpu"]  # every report names its machine and code version
    assert set(report) >= {"commit", "uncommitted_changes", "cpu_count"}
    (run,) = report["runs"]
    from tfds_atari.atari_frames_dataset_builder import Builder

    assert run["dataset_version"] == str(Builder.VERSION)  # the data the numbers come from
    assert set(run["results"]) == {"none", "vertical"}
    for noise, results in run["results"].items():
        assert set(results) == {"model", *baselines.BASELINE_NAMES}
        for name in ("recall", "precision", "f1", "hud_share", "border_share", "jitter_px"):
            assert name in results["model"], name
        assert results["model"]["num_keypoints"] == run["num_keypoints"]
    assert "bar_share" in run["results"]["vertical"]["model"]
    assert "fixed_layout" in result.stdout and "noise=vertical" in result.stdout
    for figure in report["figures"]:
        assert (out / figure).stat().st_size > 1000
    assert any("figure2" in f for f in report["figures"])
    # --refinement-steps 0 reads the PointNet's keypoints unrefined; the run's own outputs are
    # those moved by its two mean-shift steps on the error maps.
    from permakey_tf.models import ops

    run_info = runs.read_run_folder(run_dir)
    frames = np.random.default_rng(0).integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8)
    own = predictions.load_predictor(run_info, "checkpoint")(frames)
    raw = predictions.load_predictor(run_info, "checkpoint", refinement_steps=0)(frames)
    sigma = run_info.config.model_config.keypoint_sigma
    expected = ops.keypoints_to_pixels(ops.mean_shift_keypoints(
        ops.pixels_to_keypoints(raw["keypoints_pixels"]), raw["error_maps"], sigma, 2)).numpy()
    np.testing.assert_allclose(own["keypoints_pixels"], expected, atol=1e-3)
    assert np.abs(own["keypoints_pixels"] - raw["keypoints_pixels"]).max() > 1e-2
    refused = _run_cli(run_dir, "--refinement-steps", "0", "--source", "savedmodel", "--no-progress")
    assert refused.returncode == 2 and "--source checkpoint" in refused.stderr
    # The exported SavedModel gives the same keypoints, hence the same metrics.
    out_saved = tmp_path / "eval_saved"
    saved = _run_cli(run_dir, "--out", out_saved, "--noise", "none", "--source", "savedmodel",
                     "--no-progress", "--no-figures", timeout=600)
    assert saved.returncode == 0, saved.stdout[-3000:] + saved.stderr[-3000:]
    saved_report = json.loads((out_saved / "metrics.json").read_text())["runs"][0]
    assert saved_report["config"]["model_config"]["keypoint_refinement_steps"] == 2  # as exported
    saved_model = saved_report["results"]["none"]
    for name in ("recall", "precision", "f1", "border_share"):
        assert saved_model["model"][name] == pytest.approx(run["results"]["none"]["model"][name], abs=1e-6)
    # The state probes (probe_state.py) on the same run: every representation and baseline, with
    # the benchmark's published numbers for Pong beside them.
    probe = subprocess.run([sys.executable, str(ROOT / "probe_state.py"), run_dir, "--out", tmp_path / "probe",
                            "--no-progress"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert probe.returncode == 0, probe.stdout[-3000:] + probe.stderr[-3000:]
    (game,) = json.loads((tmp_path / "probe" / "probe.json").read_text())["games"]
    assert game["game"] == "pong" and game["published"]["ST-DIM"] == 0.81
    assert set(game["results"]) == {"majority", "pixels", "random_cnn"} | {
        f"pong/permakey/smoke:{name}" for name in ("keypoints", "keypoints_encoded", "keypoints_colours",
                                                    "keypoints_features", "fixed_layout")}
    assert set(game["variables"]) <= {"player_y", "player_x", "enemy_y", "enemy_x", "ball_x", "ball_y",
                                      "enemy_score", "player_score"} and game["variables"]
    for row in game["results"].values():
        assert 0.0 <= row["summary"]["mean_over_categories"] <= 1.0
    assert "AtariARI published" in probe.stdout
    # ... and, per position variable, the best single keypoint coordinate's readout.
    (readouts,) = game["readouts"].values()
    positions = {v for v in game["variables"] if v.endswith(("_x", "_y"))}
    assert set(readouts) == positions and positions
    for readout in readouts.values():
        assert "error" in readout or 0.0 <= readout["within"]["0"] <= readout["within"]["2"] <= 1.0
    assert "best single keypoint coordinate" in probe.stdout
    # Reading the same run's heatmaps again (experiments/keypoint_readout_window.py): its "whole
    # map" row is the PointNet's keypoints, and with the model's two mean-shift steps on the error
    # maps they are the model's own keypoints, so that row's probe is probe_state.py's, F1 for F1.
    windows = subprocess.run([sys.executable, str(ROOT / "experiments" / "keypoint_readout_window.py"), run_dir,
                              "--radii", "1", "--mean-shift", "2", "--error-map-blocks", "2",
                              "--out", tmp_path / "window" / "rows.json"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert windows.returncode == 0, windows.stdout[-3000:] + windows.stderr[-3000:]
    rows = json.loads((tmp_path / "window" / "rows.json").read_text())["rows"]
    assert set(rows) == {"whole map", "window radius 1", "whole map, mean shift 2 (median)",
                         "error maps, 2x2 px block means"}
    assert set(rows["error maps, 2x2 px block means"]["probe"]["f1"]) == set(game["variables"])
    assert rows["whole map, mean shift 2 (median)"]["probe"]["f1"] == pytest.approx(
        game["results"]["pong/permakey/smoke:keypoints_encoded"]["f1"], abs=1e-9)
    assert set(rows["window radius 1"]["readouts"]) == positions
    # A fresh PointNet trained alone on the run's error maps (experiments/pointnet_alone.py --probe):
    # its "joint" row is the run's own keypoints, probed on the same frames as probe_state.py.
    alone = subprocess.run([sys.executable, str(ROOT / "experiments" / "pointnet_alone.py"), run_dir,
                            "--steps", "3", "--train-frames", "64", "--variants", "default", "--probe",
                            "--out", tmp_path / "alone.json"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert alone.returncode == 0, alone.stdout[-3000:] + alone.stderr[-3000:]
    joint, trained = json.loads((tmp_path / "alone.json").read_text())["rows"]
    assert (joint["variant"], trained["variant"]) == ("joint", "default")
    assert joint["results"]["probe"]["f1"] == pytest.approx(
        game["results"]["pong/permakey/smoke:keypoints_encoded"]["f1"], abs=1e-9)
    assert set(trained["results"]["probe"]["f1"]) == set(game["variables"])
    assert 0.0 <= trained["results"]["f1"] <= 1.0 and set(trained["results"]["readouts"]) == positions
    # --saved scores the run's own saved PointNet on the same frames: evaluate.py's numbers, with
    # the label-free criteria beside them.
    saved_rows = subprocess.run([sys.executable, str(ROOT / "experiments" / "pointnet_alone.py"), run_dir,
                                 "--variants", "", "--saved", "--train-frames", "64",
                                 "--out", tmp_path / "saved.json"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert saved_rows.returncode == 0, saved_rows.stdout[-3000:] + saved_rows.stderr[-3000:]
    (best,) = json.loads((tmp_path / "saved.json").read_text())["rows"]
    assert best["variant"] == "saved:best"
    for name in ("recall", "precision", "f1"):
        assert best["results"][name] == pytest.approx(run["results"]["none"]["model"][name], abs=1e-6)
    assert 0.0 <= best["results"]["moving_error_coverage"] <= 1.0
