"""Writing a file so that readers see the old content or the new one, never half of it.

Each writer puts the content in a temporary file beside the target (``<name>.tmp``) and renames
it over the target; a crash leaves at most the temporary, which
``permakey_tf.training.runs.remove_stale_temporaries`` deletes. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any


def temporary_path(path: os.PathLike | str) -> Path:
    """Where the content of ``path`` is written before the rename: ``<path>.tmp``."""
    path = Path(path)
    return path.with_name(path.name + ".tmp")


def write_text_atomically(path: os.PathLike | str, text: str) -> Path:
    """Writes ``text`` to ``path`` through a flushed, fsynced temporary file and a rename."""
    path = Path(path)
    tmp = temporary_path(path)
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def write_json_atomically(path: os.PathLike | str, payload: Any, indent: int = 2,
                          sort_keys: bool = True) -> Path:
    """``payload`` as JSON (one trailing newline) through :func:`write_text_atomically`."""
    return write_text_atomically(path, json.dumps(payload, indent=indent, sort_keys=sort_keys) + "\n")


def read_json_record(path: os.PathLike | str) -> dict:
    """A small JSON bookkeeping record written by :func:`write_json_atomically`: its dict, or
    ``{}`` when the file is missing or damaged (a lost record only costs redoing the work it
    records, never a wrong result)."""
    path = Path(path)
    try:
        record = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def copy_atomically(source: os.PathLike | str, target: os.PathLike | str) -> Path:
    """Copies ``source`` to ``target`` through a fsynced temporary file and a rename."""
    target = Path(target)
    tmp = temporary_path(target)
    shutil.copyfile(source, tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, target)
    return target


def file_digest(path: os.PathLike | str) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
