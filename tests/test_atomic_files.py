"""permakey_tf.atomic_files: a target holds the old content or the new, never a part."""

from __future__ import annotations

import json

import pytest

from permakey_tf import atomic_files


def test_a_failed_write_keeps_the_old_content_and_leaves_only_the_temporary(tmp_path, monkeypatch):
    target = tmp_path / "state.json"
    atomic_files.write_json_atomically(target, {"epoch": 1})
    assert json.loads(target.read_text()) == {"epoch": 1}

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(atomic_files.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_files.write_json_atomically(target, {"epoch": 2})
    assert json.loads(target.read_text()) == {"epoch": 1}
    assert atomic_files.temporary_path(target).name == "state.json.tmp"
    assert json.loads(atomic_files.temporary_path(target).read_text()) == {"epoch": 2}


def test_json_is_written_with_the_requested_layout(tmp_path):
    path = atomic_files.write_json_atomically(tmp_path / "r.json", {"b": 1, "a": [1]}, indent=1,
                                              sort_keys=False)
    assert path.read_text() == '{\n "b": 1,\n "a": [\n  1\n ]\n}\n'
    assert not atomic_files.temporary_path(path).exists()


def test_a_missing_or_damaged_record_reads_as_empty_and_a_whole_one_as_written(tmp_path):
    record = tmp_path / "record.json"
    assert atomic_files.read_json_record(record) == {}
    atomic_files.write_json_atomically(record, {"1": "abc"})
    assert atomic_files.read_json_record(record) == {"1": "abc"}
    record.write_text('{"1": "ab')  # cut short
    assert atomic_files.read_json_record(record) == {}
    record.write_text("[1, 2]")  # not a record
    assert atomic_files.read_json_record(record) == {}
