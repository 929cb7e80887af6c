"""permakey_tf.provenance: the code version and machine that reports record."""

import subprocess

from permakey_tf import provenance


def _git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})


def test_code_version_names_the_commit_and_notices_changed_tracked_files(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", "a.py")
    _git(tmp_path, "commit", "-qm", "first")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True,
                          text=True).stdout.strip()
    assert provenance.code_version(tmp_path) == {"commit": head, "uncommitted_changes": False}
    (tmp_path / "untracked.txt").write_text("notes")  # untracked files do not count
    assert provenance.code_version(tmp_path)["uncommitted_changes"] is False
    (tmp_path / "a.py").write_text("x = 2\n")
    assert provenance.code_version(tmp_path) == {"commit": head, "uncommitted_changes": True}


def test_outside_a_checkout_the_version_is_unknown_not_wrong(tmp_path):
    assert provenance.code_version(tmp_path) == {"commit": None, "uncommitted_changes": None}
    record = provenance.provenance(tmp_path)
    assert record["commit"] is None and record["cpu_count"] >= 1
    assert record["machine"].count("-") >= 1 and record["cpu"]
