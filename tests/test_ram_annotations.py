"""permakey_tf.probes.ram_annotations: the benchmark's RAM table, variable categories and published scores."""

import pytest

from permakey_tf.probes import ram_annotations, state_probe


def test_categories_follow_the_benchmark_naming_rules():
    category = ram_annotations.category
    assert category("player_x") == "agent_localization"
    assert category("player_missile_x") == "small_object_localization"
    assert category("ball_y") == "small_object_localization"
    assert category("enemy_skull_y") == "other_localization"
    assert category("player_score") == "score_clock_lives_display"
    assert category("num_lives") == "score_clock_lives_display"
    assert category("player_direction") == "misc" and category("block_bit_map_3") == "misc"
    assert category("angle_of_tank") is None
    summary = state_probe.summarise({"player_x": 1.0, "player_y": 0.5, "ball_x": 0.0, "angle_of_tank": 0.3})
    assert summary["agent_localization"] == 0.75 and summary["small_object_localization"] == 0.0
    assert summary["mean_over_categories"] == pytest.approx(0.375)
    assert summary["mean_over_variables"] == pytest.approx(1.8 / 4)


def test_ram_table_splits_multi_byte_variables_and_refuses_unannotated_games():
    breakout = ram_annotations.ram_variables("breakout")
    assert breakout["block_bit_map_0"] == 0 and breakout["block_bit_map_29"] == 29
    assert ram_annotations.ram_variables("Space Invaders")["player_x"] == 28
    with pytest.raises(ram_annotations.NoRamAnnotationError, match="enduro.*games with one"):
        ram_annotations.ram_variables("enduro")
    assert ram_annotations.published_f1("mspacman")["ST-DIM"] == 0.72
    assert ram_annotations.published_f1("battlezone") == {}
