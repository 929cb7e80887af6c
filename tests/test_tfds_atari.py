"""Behaviour of the atari_frames dataset: determinism, splits, object alignment, errors.

Everything builds tiny variants (tens of frames); one Pong variant is built once per module.
"""

import dataclasses
import hashlib
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

import tfds_atari
from tfds_atari import api, collect, frames, objects, policies
from tfds_atari.atari_frames_dataset_builder import AtariFramesConfig, Builder
from tfds_atari.games import GAMES, get_game

TINY = dict(train_frames=60, validation_frames=20, test_frames=20, max_episode_steps=25)


def _build(game, data_dir, **overrides):
    return api.ensure_prepared(api.get_builder(game, data_dir=str(data_dir), **{**TINY, **overrides}))


def _record_file_digests(builder) -> dict:
    """{file name: sha256} of the TFRecord files of a prepared builder."""
    files = sorted(p for p in builder.data_path.iterdir() if ".tfrecord" in p.name)
    assert files, f"no record files in {builder.data_path}"
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _examples(builder, split):
    return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


@pytest.fixture(scope="module")
def pong(tmp_path_factory):
    return _build("pong", tmp_path_factory.mktemp("pong"))


# --- frames --------------------------------------------------------------------------------------

def test_resize_frame_keeps_a_one_pixel_bullet_and_rejects_other_shapes():
    screen = np.zeros((210, 160, 3), np.uint8)
    screen[100:104, 80] = 255  # a 1-px wide bullet
    small = frames.resize_frame(screen)
    assert small.shape == (84, 84, 3) and small.dtype == np.uint8
    assert small.max() > 60, "area interpolation must keep thin sprites visible"
    assert small[40:42, 41:43].max() == small.max(), "bullet must land at (y, x) ~ (40.8, 42)"
    with pytest.raises(ValueError, match="210, 160, 3"):
        frames.resize_frame(np.zeros((84, 84, 3), np.uint8))


def test_emulator_frames_are_resize_frame_of_the_max_of_the_last_two_of_four_screens():
    """Replays the same actions on a bare ALEInterface and rebuilds every frame by hand."""
    import ale_py
    from ale_py import roms

    from tfds_atari.emulator import AtariEmulator

    game = get_game("spaceinvaders")
    emulator = AtariEmulator(game, seed=3)
    bare = ale_py.ALEInterface()
    bare.setLoggerMode(ale_py.LoggerMode.Error)
    bare.setInt("random_seed", 3)
    bare.setFloat("repeat_action_probability", 0.0)
    bare.loadROM(roms.get_rom_path(game.rom_id))
    actions = bare.getMinimalActionSet()
    rng = np.random.default_rng(0)
    max_pool_mattered = False
    for _ in range(60):
        index = int(rng.integers(len(actions)))
        image = emulator.step(index)
        screens = []
        for _ in range(4):
            bare.act(actions[index])
            screens.append(bare.getScreenRGB())
        expected = frames.resize_frame(np.maximum(screens[2], screens[3]))
        np.testing.assert_array_equal(image, expected)
        max_pool_mattered |= not np.array_equal(expected, frames.resize_frame(screens[3]))
    assert max_pool_mattered, "flickering sprites must make the max differ from the last screen"


# --- determinism ---------------------------------------------------------------------------------

def test_same_seed_gives_byte_identical_files_and_another_seed_differs(pong, tmp_path):
    """The second build runs in another process (protobuf map order differs between processes)."""
    command = [sys.executable, "-m", "tfds_atari.build", "--game", "pong", "--data-dir", str(tmp_path / "again")]
    for field, value in TINY.items():
        command += [f"--{field.replace('_', '-')}", str(value)]
    subprocess.run(command, check=True, capture_output=True, cwd=pathlib.Path(__file__).parents[1])
    again = api.get_builder("pong", data_dir=str(tmp_path / "again"), **TINY)
    assert again.is_prepared()
    assert _record_file_digests(again) == _record_file_digests(pong)
    other = _build("pong", tmp_path / "other", seed=1)
    assert other.builder_config.name != pong.builder_config.name
    first, second = _examples(pong, "train"), _examples(other, "train")
    assert any(not np.array_equal(a["image"], b["image"]) for a, b in zip(first, second))


def test_chunks_give_the_same_frames_in_any_number_of_processes(monkeypatch):
    monkeypatch.setattr(collect, "CHUNK_FRAMES", 15)  # 3 chunks of 15 frames
    serial = list(collect.iter_split("breakout", "train", 45, seed=5, max_episode_steps=100, num_workers=1))
    parallel = list(collect.iter_split("breakout", "train", 45, seed=5, max_episode_steps=100, num_workers=2))
    assert len(serial) == len(parallel) == 45
    for a, b in zip(serial, parallel):
        assert (a.episode_id, a.step, a.png) == (b.episode_id, b.step, b.png)
        for key in a.objects:
            np.testing.assert_array_equal(a.objects[key], b.objects[key])
    assert len({r.episode_id for r in serial}) == 3, "each chunk starts its own episode"


# --- splits and episodes -------------------------------------------------------------------------

def test_splits_have_the_requested_sizes_and_share_no_episode(pong):
    episodes = {}
    for split, size in (("train", 60), ("validation", 20), ("test", 20)):
        examples = _examples(pong, split)
        assert len(examples) == size
        episodes[split] = {int(e["episode_id"]) for e in examples}
    assert len(episodes["train"]) >= 3, "max_episode_steps=25 must cut 60 frames into >= 3 episodes"
    assert not episodes["train"] & episodes["validation"]
    assert not episodes["train"] & episodes["test"]
    assert not episodes["validation"] & episodes["test"]


def test_episodes_are_stored_contiguously_step_by_step(pong):
    examples = _examples(pong, "train")
    ids = [int(e["episode_id"]) for e in examples]
    steps = [int(e["step"]) for e in examples]
    for i in range(1, len(examples)):
        if ids[i] == ids[i - 1]:
            assert steps[i] == steps[i - 1] + 1
        else:
            assert steps[i] == 0 and ids[i] not in ids[:i]
    assert max(steps) == 24, "episodes are capped at max_episode_steps"


def test_evaluation_splits_are_random_stretches_of_training_like_play(monkeypatch):
    monkeypatch.setattr(collect, "CHUNK_FRAMES", 60)
    monkeypatch.setattr(collect, "EVAL_SEGMENT_FRAMES", 6)
    # Episodes capped at 8 steps: a segment may start at step 0, 1 or 2 only.
    records = list(collect.iter_split("pong", "test", 60, seed=3, max_episode_steps=8, num_workers=1))
    assert len(records) == 60
    chunks = [records[i:i + 6] for i in range(0, 60, 6)]
    for chunk in chunks:
        assert len({r.episode_id for r in chunk}) == 1, "the step cap never cuts a segment"
        assert [r.step for r in chunk] == list(range(chunk[0].step, chunk[0].step + 6)), "consecutive play"
    starts = [chunk[0].step for chunk in chunks]
    assert set(starts) <= {0, 1, 2} and len(set(starts)) > 1, f"segments start at random points of play, got {starts}"
    assert len({r.episode_id for r in records}) == 10, "every segment is played by its own emulator"
    assert any(r.episode_id % 10**4 > 0 for r in records), "some segments begin after whole unrecorded episodes"
    again = list(collect.iter_split("pong", "test", 60, seed=3, max_episode_steps=8, num_workers=2))
    assert [(r.episode_id, r.step, r.png) for r in again] == [(r.episode_id, r.step, r.png) for r in records]


def _play_digest(records) -> str:
    digest = hashlib.sha256()
    for record in records:
        digest.update(np.int64([record.episode_id, record.step]).tobytes())
        digest.update(record.ram.tobytes())  # the emulator's whole state, as the frame shows it
    return digest.hexdigest()


def test_the_training_split_is_played_as_in_dataset_1_2_0(monkeypatch):
    """Digests of version 1.2.0's code (31f4bc2): plain, restoring (Frostbite) and tracking
    (Breakout) policies, over chunk boundaries and episode caps."""
    pong = list(collect.iter_split("pong", "train", 30, seed=3, max_episode_steps=60, num_workers=1))
    assert [r.step for r in pong] == list(range(30)), "training chunks record from the reset"
    assert _play_digest(pong) == "efa9ab2d914cabbf7d0321cccf7ef9ed20cff714e71cae4136dd8cb6bb0403f5"
    monkeypatch.setattr(collect, "CHUNK_FRAMES", 20)
    for game, expected in (("frostbite", "df8131006f6e98eadc6ea113d49faee8e8badaba38e3dc82a6b9caad07a33176"),
                           ("breakout", "9fdec7c4eb72a8a4def4a27345be8e9a5836dad820fcac1325665ee7626a0a7b")):
        records = collect.iter_split(game, "train", 40, seed=3, max_episode_steps=15, num_workers=1)
        assert _play_digest(records) == expected, game


def test_sizes_and_seed_are_in_the_config_name_and_defaults_use_the_registered_config(tmp_path):
    assert api.get_builder("Space_Invaders", data_dir=str(tmp_path)).builder_config.name == "spaceinvaders"
    small = api.get_builder("pong", data_dir=str(tmp_path), train_frames=60, validation_frames=20, test_frames=20)
    assert small.builder_config.name == "pong_tr60_va20_te20"
    assert api.get_builder("pong", data_dir=str(tmp_path), seed=2).builder_config.name == "pong_seed2"
    assert {c.name for c in Builder.BUILDER_CONFIGS} == set(GAMES)
    with pytest.raises(ValueError, match="train_frames must be a positive integer"):
        api.get_builder("pong", train_frames=0)


def test_variants_load_by_name_through_tfds(pong):
    name = pong.builder_config.name
    assert name == "pong_tr60_va20_te20_len25"
    assert AtariFramesConfig.from_name(name).split_frames == pong.builder_config.split_frames
    dataset = tfds.load(f"atari_frames/{name}", split="validation", data_dir=pong.data_dir_root)
    assert sum(1 for _ in dataset) == 20
    for bad in ("pong_len25_tr60", "pong_tr85000", "pong_xx3", "pacman_tr60"):
        with pytest.raises(ValueError):
            AtariFramesConfig.from_name(bad)


def test_collection_policy_is_recorded_in_metadata_and_description(pong):
    collection = pong.info.metadata["collection"]
    assert collection["policy"]["name"] == "held_random"
    assert collection["policy"]["hold_probability"] == 0.9
    assert collection["seed"] == 0 and collection["split_frames"] == {"train": 60, "validation": 20, "test": 20}
    reloaded = Builder(config=pong.builder_config, data_dir=pong.data_dir_root)
    assert reloaded.info.metadata["collection"] == collection
    assert pong.info.description.startswith("Atari 2600 frames"), "README.md is the description"
    assert "held_random" in pong.builder_config.description
    assert Builder.builder_configs["enduro"].description.count("held_random_accelerate") == 1
    assert "held_random_restore" in Builder.builder_configs["frostbite"].description


# --- objects -------------------------------------------------------------------------------------

def _label_names(builder):
    return builder.info.features["objects"]["label"].names


def _centroid(mask, row_offset):
    ys, xs = np.nonzero(mask)
    return (ys.mean() + row_offset + 0.5, xs.mean() + 0.5) if len(xs) else None


def _box_pixels(bbox):
    """Normalised (ymin, xmin, ymax, xmax) -> 84x84 pixel coordinates."""
    return np.asarray(bbox) * 84


def _inside(point, box, margin):
    y, x = point
    return box[0] - margin <= y <= box[2] + margin and box[1] - margin <= x <= box[3] + margin


def test_pong_ball_and_paddle_found_by_colour_lie_in_their_boxes_of_the_same_step(pong):
    """Ball: bright pixels (blue > 100, the background has 17); Player paddle: green pixels.

    Rows 14-76 of the 84x84 frame are the playfield between the walls. The ball moves about 2 px
    per step, so boxes from the previous or next step would be farther from its pixels.
    """
    names = _label_names(pong)
    examples = _examples(pong, "train")
    ball_boxes = []
    for e in examples:
        labels = [names[i] for i in e["objects"]["label"]]
        ball_boxes.append(_box_pixels(e["objects"]["bbox"][labels.index("Ball")]) if "Ball" in labels else None)
    checked_ball = checked_player = closest_is_current = 0
    for i, e in enumerate(examples):
        image = e["image"].astype(int)
        playfield = image[14:77]
        labels = [names[j] for j in e["objects"]["label"]]
        ball_box = ball_boxes[i]
        ball = _centroid(playfield[..., 2] > 100, 14)
        if ball_box is not None and ball is not None:
            checked_ball += 1
            assert _inside(ball, ball_box, margin=1.0), (i, ball, ball_box)
            neighbours = [b for b in (ball_boxes[i - 1] if i else None,
                                      ball_boxes[i + 1] if i + 1 < len(examples) else None) if b is not None]
            centre = lambda b: np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
            d_now = np.linalg.norm(np.array(ball) - centre(ball_box))
            closest_is_current += all(d_now <= np.linalg.norm(np.array(ball) - centre(b)) for b in neighbours)
        paddle = _centroid((playfield[..., 1] > 150) & (playfield[..., 0] < 150), 14)
        if "Player" in labels and paddle is not None:
            checked_player += 1
            box = _box_pixels(e["objects"]["bbox"][labels.index("Player")])
            assert _inside(paddle, box, margin=1.0), (i, paddle, box)
    assert checked_ball >= 20 and checked_player >= 20
    assert closest_is_current >= 0.9 * checked_ball


def test_pong_objects_have_hud_and_static_flags(pong):
    names = _label_names(pong)
    assert {"Player", "Ball", "Enemy", "PlayerScore", "EnemyScore"} <= set(names)
    seen = {}
    for e in _examples(pong, "train"):
        o = e["objects"]
        assert np.all((o["bbox"] >= 0) & (o["bbox"] <= 1))
        assert np.all(o["bbox"][:, :2] < o["bbox"][:, 2:])
        for label, hud, static in zip(o["label"], o["is_hud"], o["is_static"]):
            seen[names[label]] = (bool(hud), bool(static))
    assert seen["PlayerScore"] == (True, False) and seen["EnemyScore"] == (True, False)
    assert seen["Player"] == (False, False) and seen["Enemy"] == (False, False)


def test_ram_is_stored_per_frame_and_its_documented_bytes_move_with_the_boxes(pong):
    """Pong's RAM byte 51 is the player paddle's y and byte 49 the ball's x (AtariARI's table):
    across frames they must rise and fall with the Player / Ball boxes of the same example."""
    from permakey_tf.probes.ram_annotations import ram_variables

    assert pong.info.features["ram"].shape == (128,) and pong.info.features["ram"].dtype == np.uint8
    names = _label_names(pong)
    byte = ram_variables("pong")
    paddle, paddle_y, ball, ball_x = [], [], [], []
    for e in _examples(pong, "train"):
        labels = [names[i] for i in e["objects"]["label"]]
        box = lambda name: e["objects"]["bbox"][labels.index(name)]
        if "Player" in labels:
            paddle.append(int(e["ram"][byte["player_y"]]))
            paddle_y.append((box("Player")[0] + box("Player")[2]) / 2)
        if "Ball" in labels:
            ball.append(int(e["ram"][byte["ball_x"]]))
            ball_x.append((box("Ball")[1] + box("Ball")[3]) / 2)
    assert len(set(paddle)) > 3 and len(set(ball)) > 3, "the bytes must vary over the frames"
    assert np.corrcoef(paddle, paddle_y)[0, 1] > 0.95
    assert np.corrcoef(ball, ball_x)[0, 1] > 0.95
    # Stored RAM = the RAM the objects were read from: replaying the first chunk gives the same.
    first = collect.collect_chunk(collect.ChunkSpec("pong", "train", 0, 5, 0, 25))
    stored = [e["ram"] for e in _examples(pong, "train")[:5]]
    for record, ram in zip(first, stored):
        np.testing.assert_array_equal(record.ram, ram)


def test_a_version_1_0_0_dataset_stays_readable_without_ram_and_is_never_rebuilt(tmp_path, monkeypatch):
    """Data prepared by a 1.0.0 release (no `ram`) read through version="1.0.0" with their own
    features; asking to build 1.0.0 now is refused with a message, and nothing is written."""
    from permakey_tf.data import pipelines

    with monkeypatch.context() as patch:  # write a 1.0.0 dataset as the old release did
        patch.setattr(Builder, "VERSION", tfds.core.Version("1.0.0"))
        patch.setattr(Builder, "SUPPORTED_VERSIONS", [])
        _build("pong", tmp_path)
    old = api.get_builder("pong", data_dir=str(tmp_path), version="1.0.0", **TINY)
    assert old.is_prepared() and "ram" not in old.info.features
    examples = _examples(old, "test")
    assert len(examples) == TINY["test_frames"] and "ram" not in examples[0]
    batch = next(iter(pipelines.evaluation_batches(old.as_dataset(split="test", shuffle_files=False))))
    assert "ram" not in batch and batch["image"].shape[1:] == (84, 84, 3)
    other = tmp_path / "other"
    with pytest.raises(tfds_atari.DatasetNotPreparedError, match="only the current version"):
        api.ensure_prepared(api.get_builder("pong", data_dir=str(other), version="1.0.0", **TINY))
    assert not (other / "atari_frames" / "pong_tr60_va20_te20_len25" / "1.0.0").exists()


def test_fast_object_encoder_matches_tfds_sequence_and_is_stored_as_one():
    """ObjectSequence must encode exactly as tfds.features.Sequence, and save as a plain one."""
    from tensorflow_datasets.core import example_serializer

    from tfds_atari.atari_frames_dataset_builder import ObjectSequence, object_features

    game = get_game("mspacman")
    names = objects.object_class_names(game)
    fast = ObjectSequence(object_features(names))
    plain = tfds.features.Sequence(object_features(names))
    records = collect.collect_chunk(collect.ChunkSpec("mspacman", "train", 0, 5, 0, 100))
    empty = {"bbox": np.zeros((0, 4), np.float32), "label": np.zeros(0, np.int64),
             "is_hud": np.zeros(0, bool), "is_static": np.zeros(0, bool)}
    serializer = example_serializer.ExampleSerializer(plain.get_serialized_info())
    for example in [r.objects for r in records] + [empty]:
        expected = serializer.serialize_example(plain.encode_example(example))
        assert serializer.serialize_example(fast.encode_example(example)) == expected
    assert fast.to_json()["type"] == plain.to_json()["type"]
    bad = dict(records[0].objects, bbox=records[0].objects["bbox"] * 2)
    with pytest.raises(ValueError, match="between 0 and 1"):
        fast.encode_example(bad)


def test_static_classes_and_class_names_per_game():
    mspacman, battlezone = get_game("mspacman"), get_game("battlezone")
    assert {"Pill", "PowerPill"} <= objects.static_class_names(mspacman)
    assert "Player" not in objects.static_class_names(mspacman)
    assert "Player" in objects.static_class_names(battlezone), "BattleZone's Player is the fixed cockpit"
    assert "Red_Thing" in objects.object_class_names(battlezone), "emitted but not declared by OCAtari"
    assert {"Key_HUD", "Score", "Life"} <= objects.hud_class_names(get_game("montezumarevenge"))
    assert {"Radar", "Radar_Content", "Score"} <= objects.hud_class_names(battlezone)
    for game in GAMES.values():
        names = objects.object_class_names(game)
        assert len(names) == len(set(names)) and "Player" in names, game.name


def test_normalise_box_scales_by_160_and_210_and_clips():
    assert objects.normalise_box(16, 21, 16, 42) == pytest.approx((0.1, 0.1, 0.3, 0.2))
    assert objects.normalise_box(-8, 200, 16, 20) == pytest.approx((200 / 210, 0.0, 1.0, 0.05))
    assert objects.normalise_box(170, 10, 5, 5) is None


def test_enduro_collects_without_hud_objects():
    records = collect.collect_chunk(collect.ChunkSpec("enduro", "train", 0, 40, 0, 100))
    assert len(records) == 40
    assert not any(r.objects["is_hud"].any() for r in records)
    assert sum(len(r.objects["label"]) for r in records) >= 40, "at least the player's car each frame"


# --- policies ------------------------------------------------------------------------------------

def test_held_actions_repeat_with_probability_point_nine():
    sampler = policies.ActionSampler(policies.HELD_RANDOM, ["NOOP", "FIRE", "LEFT", "RIGHT"], np.random.default_rng(0))
    actions = np.array([sampler.next_action() for _ in range(5000)])
    repeats = np.mean(actions[1:] == actions[:-1])
    assert 0.9 <= repeats <= 0.95  # 0.9 held + 0.1 * 1/4 redrawn the same


def test_enduro_policy_mostly_accelerates():
    names = ["NOOP", "FIRE", "RIGHT", "LEFT", "DOWN", "DOWNRIGHT", "DOWNLEFT", "RIGHTFIRE", "LEFTFIRE"]
    sampler = policies.ActionSampler(policies.policy_for_game("enduro"), names, np.random.default_rng(0))
    actions = [names[sampler.next_action()] for _ in range(5000)]
    assert np.mean(["FIRE" in a for a in actions]) > 0.7


def _frame_objects(player_x=None, ball_x=None):
    centers = {}
    if player_x is not None:
        centers["Player"] = (player_x, 190.0)
    if ball_x is not None:
        centers["Ball"] = (ball_x, 120.0)
    empty = np.zeros((0, 4), np.float32)
    return objects.FrameObjects(empty, np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, bool),
                                player_center=centers.get("Player"), centers=centers)


def test_tracking_policy_moves_the_paddle_towards_the_ball_and_serves():
    names = ["NOOP", "FIRE", "RIGHT", "LEFT"]
    always = dataclasses.replace(policies.TRACK_BALL, track_probability=1.0)
    sampler = policies.ActionSampler(always, names, np.random.default_rng(0))
    assert names[sampler.next_action(_frame_objects(player_x=80, ball_x=30))] == "LEFT"
    assert names[sampler.next_action(_frame_objects(player_x=80, ball_x=130))] == "RIGHT"
    assert names[sampler.next_action(_frame_objects(player_x=80, ball_x=82))] == "NOOP"
    assert names[sampler.next_action(_frame_objects(player_x=80))] == "FIRE"  # no ball: serve
    half = policies.ActionSampler(policies.TRACK_BALL, names, np.random.default_rng(0))
    actions = [names[half.next_action(_frame_objects(player_x=80, ball_x=30))] for _ in range(2000)]
    assert 0.5 < np.mean([a == "LEFT" for a in actions]) < 0.75  # 0.5 tracked + random LEFTs


def test_policies_without_tracking_ignore_the_objects():
    """Games other than Breakout draw the same actions as before tracking existed."""
    names = ["NOOP", "FIRE", "RIGHT", "LEFT"]
    for policy in (policies.HELD_RANDOM, policies.ACCELERATE, policies.RESTORE):
        blind = policies.ActionSampler(policy, names, np.random.default_rng(3))
        seeing = policies.ActionSampler(policy, names, np.random.default_rng(3))
        plain = [blind.next_action() for _ in range(300)]
        assert plain == [seeing.next_action(_frame_objects(80, 30)) for _ in range(300)]


def test_breakout_collection_keeps_the_ball_in_play():
    """Held-random play leaves Breakout's ball out of play about half the time (paddle at a wall);
    the tracking policy keeps it in play in most frames and moves the paddle across the width."""
    names = objects.object_class_names(get_game("breakout"))
    records = collect.collect_chunk(collect.ChunkSpec("breakout", "train", 0, 600, 0, 2000))
    ball = names.index("Ball")
    assert np.mean([ball in r.objects["label"] for r in records]) > 0.8
    paddle = names.index("Player")
    xs = np.array([r.objects["bbox"][list(r.objects["label"]).index(paddle)][[1, 3]].mean()
                   for r in records if paddle in r.objects["label"]])
    assert np.mean((xs > 0.2) & (xs < 0.8)) > 0.5  # not parked at the walls


def test_restore_policy_continues_episodes_from_saved_states(monkeypatch):
    """Frostbite: 600 frames in episodes of <= 250 steps; most new episodes start from a saved state."""
    from tfds_atari.emulator import AtariEmulator

    calls = {"restore": 0, "reset": 0}
    real_restore, real_reset = AtariEmulator.restore_state, AtariEmulator.reset

    def counting_restore(self, state):
        calls["restore"] += 1
        return real_restore(self, state)

    def counting_reset(self, noop_steps=0):
        calls["reset"] += 1
        return real_reset(self, noop_steps)

    monkeypatch.setattr(AtariEmulator, "restore_state", counting_restore)
    monkeypatch.setattr(AtariEmulator, "reset", counting_reset)
    records = collect.collect_chunk(collect.ChunkSpec("frostbite", "train", 0, 600, 0, 2000))
    ids = [r.episode_id for r in records]
    assert max(r.step for r in records) == 249 and ids == sorted(ids)
    # Every episode starts from a restore or a reset.
    assert calls["restore"] + calls["reset"] == len(set(ids))
    assert calls["restore"] >= 1
    again = collect.collect_chunk(collect.ChunkSpec("frostbite", "train", 0, 600, 0, 2000))
    assert [(r.episode_id, r.step, r.png) for r in again] == [(r.episode_id, r.step, r.png) for r in records]


# --- errors --------------------------------------------------------------------------------------

def test_unknown_game_lists_the_valid_games(tmp_path):
    with pytest.raises(tfds_atari.UnknownGameError) as error:
        api.get_builder("pacman", data_dir=str(tmp_path))
    for name in GAMES:
        assert name in str(error.value)


def test_missing_dataset_without_building_names_the_build_command(tmp_path):
    builder = api.get_builder("pong", data_dir=str(tmp_path), **TINY)
    with pytest.raises(api.DatasetNotPreparedError) as error:
        api.ensure_prepared(builder, build_if_missing=False)
    message = str(error.value)
    assert "python -m tfds_atari.build --game pong --train-frames 60 --validation-frames 20" in message
    assert "--max-episode-steps 25" in message and str(tmp_path) in message
    assert f"get_builder('pong', data_dir='{tmp_path}', train_frames=60," in message
    assert not builder.is_prepared() and not any(tmp_path.iterdir())


def test_interrupted_build_leaves_nothing_that_reads_as_complete(tmp_path, monkeypatch):
    real_iter_split = collect.iter_split

    def interrupted(*args, **kwargs):
        for i, record in enumerate(real_iter_split(*args, **kwargs)):
            if i == 30:
                raise KeyboardInterrupt("simulated interruption")
            yield record

    monkeypatch.setattr(collect, "iter_split", interrupted)
    builder = api.get_builder("pong", data_dir=str(tmp_path), **TINY)
    with pytest.raises(KeyboardInterrupt):
        api.ensure_prepared(builder)
    assert not builder.is_prepared() and not builder.data_path.exists()
    # TFDS keeps only a config note (atari_frames/.config/metadata.json) and the build's lock
    # file (atari_frames/<config>.lock, empty); no data or info files.
    leftovers = [p for p in tmp_path.rglob("*")
                 if p.is_file() and ".config" not in p.parts and p.suffix != ".lock"]
    assert not leftovers, leftovers
    with pytest.raises(api.DatasetNotPreparedError):
        api.ensure_prepared(api.get_builder("pong", data_dir=str(tmp_path), **TINY), build_if_missing=False)
    monkeypatch.setattr(collect, "iter_split", real_iter_split)
    rebuilt = api.ensure_prepared(api.get_builder("pong", data_dir=str(tmp_path), **TINY))
    assert rebuilt.info.splits["train"].num_examples == 60


def test_cli_builds_and_reports_frames_per_second(tmp_path, capsys):
    from tfds_atari import build

    argv = ["--game", "breakout", "--train-frames", "30", "--validation-frames", "10", "--test-frames", "10",
            "--data-dir", str(tmp_path), "--stats"]
    assert build.main(argv) == 0
    out = capsys.readouterr().out
    assert "built atari_frames/breakout_tr30_va10_te10: 50 frames in" in out and "frames/s" in out
    assert "'frames': 30" in out and "test split:" in out
    assert "'class_presence': {" in out and "'Player': 1.0" in out and "player_x_middle_share" in out
    assert build.main(["--game", "pacman"]) == 2
