"""The export folder's versions (permakey_tf.training.export_versions): numbering, the newest SavedModel,
and which checkpoint each version holds."""

from __future__ import annotations

import json

from permakey_tf.training import export_versions


def _version(base, name, saved_model=True):
    folder = base / name
    folder.mkdir(parents=True)
    if saved_model:
        (folder / "saved_model.pb").write_bytes(b"pb")
    return folder


def test_the_newest_saved_model_is_the_highest_numbered_complete_version(tmp_path):
    assert export_versions.newest_saved_model(tmp_path / "missing") is None
    _version(tmp_path, "2")
    _version(tmp_path, "10")
    _version(tmp_path, "11", saved_model=False)  # being written, or damaged: not served
    _version(tmp_path, ".tmp-12-99")
    assert export_versions.newest_saved_model(tmp_path) == tmp_path / "10"
    assert export_versions.next_version(tmp_path) == 12


def test_the_record_says_whether_the_newest_version_holds_a_checkpoint(tmp_path):
    first = _version(tmp_path, "1")
    assert export_versions.newest_holds(tmp_path, "aaa") is None
    export_versions.record_export(first, "aaa")
    assert export_versions.newest_holds(tmp_path, "aaa") == first
    assert export_versions.newest_holds(tmp_path, "bbb") is None
    second = _version(tmp_path, "2")
    assert export_versions.newest_holds(tmp_path, "aaa") is None, "only the newest version counts"
    export_versions.record_export(second, "bbb")
    assert json.loads((tmp_path / export_versions.RECORD).read_text()) == {"1": "aaa", "2": "bbb"}
    (tmp_path / export_versions.RECORD).write_text("{damaged")
    assert export_versions.newest_holds(tmp_path, "bbb") is None  # a damaged record: export again
