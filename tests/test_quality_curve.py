"""Per-epoch quality curves: read back from TensorBoard (a resumed run's rewrite wins), summarised
over seeds, and carried through report folders by experiments/quality_curves.py."""

import importlib.util
import json
import math
import time
from pathlib import Path

import pytest

from permakey_tf.evaluation import quality_curve

ROOT = Path(__file__).resolve().parents[1]


def _write_quality(run_dir: Path, values: dict[int, dict[str, float]]) -> None:
    """Scalars as KeypointQuality writes them: quality/<metric>, step = completed epochs."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(run_dir / quality_curve.QUALITY_EVENTS_DIR))
    for epoch, metrics in values.items():
        with writer.as_default(step=epoch):
            for name, value in metrics.items():
                tf.summary.scalar(f"quality/{name}", value)
            tf.summary.scalar("other/not_quality", 9.0)
    writer.close()


def test_a_curve_holds_every_epoch_and_a_resumed_runs_rewrite_wins(tmp_path):
    _write_quality(tmp_path, {1: {"f1": 0.1, "recall_class/ball": 0.0}, 2: {"f1": 0.2}, 3: {"f1": 0.25}})
    time.sleep(1.1)  # event wall times have a resolution of microseconds; keep the order unambiguous
    # Resumed from the epoch-2 backup: epoch 3 trained again with another result, then epoch 4.
    _write_quality(tmp_path, {3: {"f1": 0.3}, 4: {"f1": 0.4, "recall_class/ball": 0.5}})
    curve = quality_curve.read_quality_curve(tmp_path)
    assert set(curve) == {"f1", "recall_class/ball"}  # other tags are left out
    assert curve["f1"] == pytest.approx({1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4})
    assert curve["recall_class/ball"] == pytest.approx({1: 0.0, 4: 0.5})
    # Through a JSON file whose keys are sorted as text ("10" before "2"), the epochs come back in order.
    long = {"f1": {epoch: epoch / 100 for epoch in range(1, 13)}}
    back = quality_curve.curve_from_json(json.loads(json.dumps(quality_curve.curve_to_json(long), sort_keys=True)))
    assert back == long and list(back["f1"]) == list(range(1, 13))


def test_a_folder_without_quality_events_is_refused_with_the_reason(tmp_path):
    with pytest.raises(FileNotFoundError, match="quality_frames"):
        quality_curve.read_quality_curve(tmp_path)
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(tmp_path / quality_curve.QUALITY_EVENTS_DIR))
    with writer.as_default(step=1):
        tf.summary.scalar("other/loss", 1.0)
    writer.close()
    with pytest.raises(quality_curve.NoQualityEventsError, match="no quality"):
        quality_curve.read_quality_curve(tmp_path)


def test_cells_over_seeds_give_mean_sd_and_worst_and_leave_out_missing_epochs():
    curves = {0: {"f1": {6: 0.4, 12: 0.5}}, 1: {"f1": {6: 0.2, 12: 0.6}}, 2: {"f1": {6: 0.3}}}
    cells = quality_curve.curve_cells(curves, "f1", [6, 12])
    assert cells[6].mean == pytest.approx(0.3) and cells[6].sd == pytest.approx(0.1)
    assert (cells[6].worst, cells[6].worst_seed, cells[6].count) == (pytest.approx(0.2), 1, 3)
    assert cells[12].count == 2 and cells[12].worst_seed == 0 and cells[12].mean == pytest.approx(0.55)
    table = quality_curve.format_curve_table(curves, ["f1"], [6, 12])
    assert "| f1 | 0.30 ± 0.10 (worst 0.20, s1) | 0.55 ± 0.07 (worst 0.50, s0) |" in table
    # For a lower-is-better metric the worst seed is the highest one.
    ratio = quality_curve.curve_cells({0: {"pointnet_loss_ratio": {6: 0.7}}, 1: {"pointnet_loss_ratio": {6: 0.9}}},
                                      "pointnet_loss_ratio", [6])[6]
    assert (ratio.worst, ratio.worst_seed) == (pytest.approx(0.9), 1) and ratio.mean == pytest.approx(0.8)
    missing = quality_curve.curve_cells(curves, "probe_r2", [6])[6]
    assert missing.count == 0 and math.isnan(missing.mean)


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_extract_then_table_over_a_setting_folder(tmp_path):
    script = _script("quality_curves")
    setting = tmp_path / "reports" / "pong" / "permakey-x4"
    for seed, final in ((0, 0.5), (1, 0.3)):
        run = tmp_path / "runs" / f"seed{seed}"
        _write_quality(run, {epoch: {"f1": final * epoch / 4, "fixed_layout_f1": 0.1} for epoch in (1, 2, 3, 4)})
        assert script.main(["extract", str(run), "--out", str(setting / f"seed{seed}")]) == 0
        record = json.loads((setting / f"seed{seed}" / script.CURVE_FILE).read_text())
        assert record["run_dir"] == str(run) and record["curve"]["f1"]["4"] == pytest.approx(final)
    assert script.main(["table", str(setting), "--epochs", "2", "4"]) == 0
    text = (setting / "curves" / "curves.md").read_text()
    assert "seeds 0 1" in text and "| f1 | 0.20 ± 0.07 (worst 0.15, s1) | 0.40 ± 0.14 (worst 0.30, s1) |" in text
    assert (setting / "curves" / "curves.png").stat().st_size > 1000
    # A folder without curves, and a run folder without quality events: an error naming the fix.
    assert script.main(["table", str(tmp_path / "empty")]) == 2
    assert script.main(["extract", str(tmp_path / "nothing"), "--out", str(tmp_path / "out")]) == 2
    # over_seeds' form: a run without per-epoch quality is said, not an error; nothing written.
    assert script.main(["extract", str(tmp_path / "nothing"), "--out", str(tmp_path / "out"), "--if-present"]) == 0
    assert not (tmp_path / "out").exists()
    # The seed files keep the epochs in training order.
    assert list(json.loads((setting / "seed0" / script.CURVE_FILE).read_text())["curve"]["f1"]) == ["1", "2", "3", "4"]


def test_over_seeds_keeps_the_curve_after_training_and_before_evaluating(tmp_path):
    over_seeds = _script("over_seeds")
    args = over_seeds.parse_args(["--game", "pong", "--logdir", str(tmp_path)])
    steps = over_seeds.seed_commands(args, 0, tmp_path / "run", tmp_path / "seed0")
    assert [name for name, _ in steps] == ["train", "curve", "evaluate", "probe"]
    curve = dict(steps)["curve"]
    assert curve[-5:] == ["extract", str(tmp_path / "run"), "--out", str(tmp_path / "seed0"), "--if-present"]
