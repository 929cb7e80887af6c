"""permakey_tf.console: TensorFlow's start-up noise dropped, other lines kept."""

import os
import subprocess
import sys

from permakey_tf import console


def test_quiet_tensorflow_keeps_lines_it_does_not_know():
    from permakey_tf import console

    assert console.harmless("E0000 00:00:17 123 cuda_platform.cc:52] failed call to cuInit: INTERNAL")
    assert not console.harmless("W0000 some_op.cc:12] Out of memory while allocating")


def test_quiet_import_prints_nothing_of_tensorflows_start_up_but_keeps_real_errors():
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "PERMAKEY_VERBOSE")}
    code = ("from permakey_tf import console; console.quiet_tensorflow(); import tensorflow as tf; "
            "print(int(tf.constant(1) + 1)); import sys; print('real problem', file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "2"
    assert result.stderr.strip() == "real problem", result.stderr[-2000:]
