"""A quiet console: TensorFlow imported without its start-up noise, real warnings kept.

Importing TensorFlow on a machine without a GPU prints, from C++ and before any Python logging
setting can act, "Could not find cuda drivers" (twice), "failed call to cuInit" (an ERROR line
on a machine that needs no GPU), the CPU-instruction notice, and TFDS warns "Variant folder ...
has no dataset_info.json" twice for every normal first build. :func:`quiet_tensorflow` imports
TensorFlow with the process's stderr captured, drops exactly those known start-up lines and
writes everything else back, so a real warning still shows. ``PERMAKEY_VERBOSE=1`` (or any
``TF_CPP_MIN_LOG_LEVEL`` the user sets) leaves TensorFlow's console as it is.

The command-line tools call it once their flags are checked; a library user is not affected.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile

# Start-up lines that say nothing about this run (matched anywhere in a line).
HARMLESS_STARTUP = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "Could not find cuda drivers on your machine, GPU will not be used",
    "failed call to cuInit",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions:",
    "oneDNN custom operations are on",
)
_VARIANT_WITHOUT_INFO = re.compile(r"Variant folder .* has no dataset_info\.json")


class _DropFirstBuildNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _VARIANT_WITHOUT_INFO.search(record.getMessage())


def harmless(line: str) -> bool:
    return any(marker in line for marker in HARMLESS_STARTUP)


def quiet_tensorflow() -> None:
    """Imports TensorFlow (and finds its devices) with the start-up noise above removed."""
    if os.environ.get("PERMAKEY_VERBOSE") == "1" or "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "1"  # C++ INFO lines off once logging is initialised
    logging.getLogger("absl").addFilter(_DropFirstBuildNotice())
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the GPU probe happens here
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        text = captured.read().decode("utf-8", "replace")
    kept = [line for line in text.splitlines(keepends=True) if line.strip() and not harmless(line)]
    sys.stderr.write("".join(kept))
