"""tf.distribute: MirroredStrategy on two logical CPUs gives the single-device update;
MultiWorkerMirroredStrategy with two train.py worker processes on 127.0.0.1 trains a smoke run
and both workers end with the same weights.

Both run in subprocesses: logical devices must be configured before TensorFlow runs any op, and
each worker is its own process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

MIRRORED = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    import keras
    import numpy as np

    from permakey_tf.training import distribute
    from permakey_tf.training import run_flags
    from permakey_tf.models.permakey import PermaKey

    # Each replica draws VAE sampling noise for its own half of the batch, which no single-device
    # run reproduces: use the latent mean (zero noise) for this comparison.
    assert hasattr(PermaKey, "_standard_normal"), "PermaKey's noise hook moved: update this test"
    PermaKey._standard_normal = lambda self, shape: tf.zeros(shape)

    model_name = sys.argv[2]
    config = run_flags.resolve_config({"preset": "smoke", "model": model_name}).model_config
    rng = np.random.default_rng(0)
    half = rng.integers(0, 256, size=[2, 84, 84, 3], dtype=np.uint8)
    # Replica i gets rows [2i, 2i+2): identical halves give each replica the full batch's
    # BatchNorm statistics, so a correct replica-scaled update equals the single-device one.
    batch = np.concatenate([half, half])
    data = (batch, batch) if model_name == "transporter" else batch

    def make():
        if model_name == "permakey":
            model = PermaKey(config)
            # Plain SGD: Adam's first step is invariant to the gradient's scale and would hide a
            # missing 1/num_replicas.
            model.compile(vae_optimizer=keras.optimizers.SGD(0.05),
                          lsp_optimizer=keras.optimizers.SGD(0.05),
                          pointnet_optimizer=keras.optimizers.SGD(0.05))
        else:
            from permakey_tf.models.transporter import Transporter
            model = Transporter(config)
            model.compile(optimizer=keras.optimizers.SGD(0.05))
        model(batch[:1])
        return model

    def one_step(model):
        distribute.skip_symbolic_build(model)
        model.fit(tf.data.Dataset.from_tensors(data), epochs=1, verbose=0)
        return [np.asarray(w) for w in model.get_weights()]

    keras.utils.set_random_seed(0)
    single = make()
    initial = [np.asarray(w) for w in single.get_weights()]
    single_after = one_step(single)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        mirrored = make()
        mirrored.set_weights(initial)
    mirrored_after = one_step(mirrored)

    def delta(a, b):
        return max(float(np.abs(x - y).max()) for x, y in zip(a, b))

    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "update": delta(single_after, initial),
        "mismatch": delta(single_after, mirrored_after),
        "mismatch_if_unscaled": delta(
            [i + 2 * (s - i) for i, s in zip(initial, single_after)], single_after),
    }))
    """
)


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", PYTHONHASHSEED="0")
    env.pop("TF_CONFIG", None)
    return env


@pytest.mark.parametrize("model_name", ["permakey", "transporter"])
def test_mirrored_two_cpus_gives_the_single_device_update(model_name):
    result = subprocess.run([sys.executable, "-c", MIRRORED, str(REPO), model_name], env=_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["update"] > 1e-3, "the step must move the weights for the comparison to mean much"
    assert report["mismatch"] < 1e-4, report
    # A forgotten 1/num_replicas would double the update: far outside the tolerance above.
    assert report["mismatch_if_unscaled"] > 100 * max(report["mismatch"], 1e-6)


def _free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multiworker_two_processes_train_and_agree(tmp_path):
    import tfds_atari
    from permakey_tf.training import run_flags

    smoke = run_flags.resolve_config({"preset": "smoke"}).data
    data_dir = tmp_path / "tfds"
    # Build the data once, before the workers start (they would race to build it).
    tfds_atari.ensure_prepared(tfds_atari.get_builder(
        "spaceinvaders", data_dir=str(data_dir), train_frames=smoke.train_frames,
        validation_frames=smoke.validation_frames, test_frames=smoke.test_frames,
    ))
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        env = _env()
        env["TF_CONFIG"] = json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        )
        processes.append(subprocess.Popen(
            [sys.executable, str(REPO / "train.py"), "--preset", "smoke", "--distribute",
             "multiworker", "--name", "mw", "--logdir", str(tmp_path / "runs"), "--data-dir",
             str(data_dir)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=400))
    finally:
        for process in processes:
            process.kill()
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
        assert "2 replica(s)" in out

    import keras

    from permakey_tf.models.permakey import PermaKey  # noqa: F401  (registers the class)

    run_dir = tmp_path / "runs" / "spaceinvaders" / "permakey" / "mw"
    chief = keras.models.load_model(run_dir / "checkpoints" / "best.keras")
    worker = keras.models.load_model(run_dir / "workers" / "1" / "checkpoints" / "best.keras")
    initial = PermaKey(chief.config)
    moved = max(float(np.abs(a - b).max()) for a, b in zip(chief.get_weights(), initial.get_weights()))
    assert moved > 1e-3, "training must have changed the weights"
    # Trainable weights come from all-reduced gradients: identical on both workers.
    for a, b in zip(chief.trainable_weights, worker.trainable_weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6, err_msg=a.path)
    # BatchNorm moving statistics are created by Keras 3 with aggregation "none": each worker
    # averages the statistics of its own half of every batch, so they only nearly agree.
    for a, b in zip(chief.non_trainable_weights, worker.non_trainable_weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-2, err_msg=a.path)
    assert (run_dir / "export" / "1" / "saved_model.pb").exists()
    assert not (run_dir / "workers" / "1" / "export").exists(), "only the chief exports"
