"""The AtariARI-style probes: F1, entropy filter, and what a probe can and cannot read."""

import numpy as np
import pytest

from permakey_tf.probes import representations, state_probe

BYTE = 5  # the synthetic state variable's RAM byte


def _ram(rng, n):
    """Random RAM whose byte 5 takes 40 values 3 apart (like a position byte)."""
    ram = rng.integers(0, 256, (n, 128)).astype(np.uint8)
    ram[:, BYTE] = rng.integers(0, 40, n) * 3
    return ram


@pytest.fixture(scope="module")
def splits():
    rng = np.random.default_rng(0)
    return {split: _ram(rng, n) for split, n in (("train", 2000), ("validation", 300), ("test", 600))}


def _keypoints(ram, rng, extra=3):
    """K = 1 + extra keypoints in pixels; the first one's x is the variable, the rest random."""
    points = rng.uniform(0, 84, (len(ram), 1 + extra, 2))
    points[:, 0, 0] = ram[:, BYTE].astype(np.float64) * 84 / 120
    return points


def _probe(features, splits):
    data = state_probe.ProbeData(features, splits)
    return state_probe.probe_representation(data, {"player_x": BYTE})


def test_weighted_f1_counts_each_value_by_its_true_count():
    assert state_probe.weighted_f1([1, 1, 2, 2], [1, 1, 2, 2]) == 1.0
    # value 1: precision 1, recall 1/2 -> F1 2/3 (weight 2); value 2: precision 2/3, recall 1 -> 0.8
    assert state_probe.weighted_f1([1, 1, 2, 2], [1, 2, 2, 2]) == pytest.approx((2 * 2 / 3 + 2 * 0.8) / 4)
    assert state_probe.weighted_f1([3, 3], [4, 4]) == 0.0


def test_a_representation_holding_the_variable_gets_f1_near_one(splits):
    one_hot = {s: np.eye(256)[r[:, BYTE]] for s, r in splits.items()}
    assert _probe(one_hot, splits)["f1"]["player_x"] > 0.99
    rng = np.random.default_rng(1)
    encoded = {s: representations.encode_coordinates(_keypoints(r, rng, extra=0)) for s, r in splits.items()}
    assert _probe(encoded, splits)["f1"]["player_x"] > 0.95


def test_noise_gets_chance_and_the_majority_baseline_is_chance(splits):
    rng = np.random.default_rng(2)
    noise = {s: rng.normal(size=(len(r), 32)) for s, r in splits.items()}
    chance = 1.0 / 40
    assert _probe(noise, splits)["f1"]["player_x"] < 3 * chance
    majority = state_probe.majority_baseline(splits, {"player_x": BYTE})
    assert majority["f1"]["player_x"] < 2 * chance
    constant = {s: np.ones((len(r), 4)) for s, r in splits.items()}  # a fixed keypoint layout
    assert _probe(constant, splits)["f1"]["player_x"] < 2 * chance


def test_a_raw_coordinate_is_hard_for_a_linear_probe_and_its_encoding_is_not(splits):
    """Why the CLI probes encoded keypoints: the same information, linearly readable."""
    rng = np.random.default_rng(3)
    points = {s: _keypoints(r, rng) for s, r in splits.items()}
    raw = _probe({s: representations.keypoint_coordinates(p) for s, p in points.items()}, splits)
    encoded = _probe({s: representations.encode_coordinates(p) for s, p in points.items()}, splits)
    assert raw["f1"]["player_x"] < 0.3 < 0.6 < encoded["f1"]["player_x"]


def test_low_entropy_variables_are_dropped_and_duplicates_masked():
    ram = np.zeros((100, 128), np.uint8)
    ram[:, 1] = np.arange(100) % 50  # high entropy
    ram[:95, 2] = 7  # one value 95% of the time: entropy 0.2 nats
    kept = state_probe.kept_variables(ram, {"a": 1, "b": 2, "c": 3}, threshold=0.6)
    assert kept == {"a": 1}
    assert state_probe.entropy_nats(np.arange(4)) == pytest.approx(np.log(4))
    frames = np.arange(4 * 2 * 2 * 3, dtype=np.uint8).reshape(4, 2, 2, 3)
    assert state_probe.unique_frame_mask(frames, frames[[1, 3]]).tolist() == [True, False, True, False]


def test_the_cli_refuses_a_game_without_ram_annotation_before_loading_anything(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    run = tmp_path / "enduro" / "permakey" / "r"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "best.keras").write_bytes(b"not loaded")
    from permakey_tf.training import runs, run_flags

    runs.write_config(run_flags.resolve_config({"game": "enduro", "preset": "smoke"}), run)
    result = subprocess.run([sys.executable, str(root / "probe_state.py"), str(run), "--no-progress"],
                            capture_output=True, text=True, timeout=120, cwd=root)
    assert result.returncode == 2 and "enduro has no RAM annotation" in result.stderr
    assert "Traceback" not in result.stderr and not (run / "probe").exists()
