"""Fresh PointNets trained on a trained PermaKey run's error maps: the keypoint bottleneck alone.

    python experiments/pointnet_alone.py RUN_DIR [--steps 300] [--variants NAME,NAME] [--seeds 0]
        [--probe] [--saved] [--data-dir DIR] [--split validation]

The run's encoder and LSPNs compute error maps for the first ``--train-frames`` training frames
and for the test split once (cached in RUN_DIR/pointnet_alone_cache.npz); then for every variant
(changes to the run's PermaKeyConfig: reduction, padding, temperature, sigma, ...) a new PointNet
is trained on those maps alone with the project's loss (Adam, batch 32) and scored on the test
maps with evaluate.py's metrics, the shift-equivariance gain (maps shifted, zero fill), the
PointNet loss against its fixed layout and the moving-error coverage (diagnostics.py; both need no
labels: are they criteria for choosing among PointNets?). With --saved the run's own saved
PointNets are scored on the same frames first (--variants '' for those alone). One line per
variant and seed, and a JSON file.

With --probe, also the AtariARI-style probe of each variant's keypoints (probe_state.py's splits,
protocol and coordinate readouts; the error maps of the probes' frames are computed once by the
run's model) and, as the first row "joint", the run's own jointly trained PointNet probed on the
same frames: does a PointNet trained on settled maps hold the game's state more exactly?

This separates "can the bottleneck read these maps?" from "does joint training get there?".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from permakey_tf.evaluation import predictions
from permakey_tf.probes import probe_inputs
from permakey_tf.training import runs  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Changes to the run's PermaKeyConfig; "reference" is the authors' bottleneck, "default" ours.
REFERENCE = {"keypoint_reduction": "marginal", "keypoint_padding": "zero", "heatmap_temperature": 1.0,
             "pointnet_loss_extent": "frame"}
DEFAULT = {"keypoint_reduction": "spatial", "keypoint_padding": "reflect", "heatmap_temperature": 0.2,
           "pointnet_loss_extent": "padded"}
VARIANTS: dict[str, dict] = {
    "reference": REFERENCE,
    "reference+spatial": {**REFERENCE, "keypoint_reduction": "spatial"},
    "reference+reflect": {**REFERENCE, "keypoint_padding": "reflect"},
    "reference+T0.2": {**REFERENCE, "heatmap_temperature": 0.2},
    "reference+padded": {**REFERENCE, "pointnet_loss_extent": "padded"},
    "spatial+reflect": {**REFERENCE, "keypoint_reduction": "spatial", "keypoint_padding": "reflect"},
    "spatial+T0.2": {**REFERENCE, "keypoint_reduction": "spatial", "heatmap_temperature": 0.2},
    "spatial+reflect+T0.2": {**DEFAULT, "pointnet_loss_extent": "frame"},
    "default": DEFAULT,
    "default-reflect": {**DEFAULT, "keypoint_padding": "zero"},
    "default+T0.1": {**DEFAULT, "heatmap_temperature": 0.1},
    "default+sigma0.05": {**DEFAULT, "keypoint_sigma": 0.05},
    "default+sigma0.15": {**DEFAULT, "keypoint_sigma": 0.15},
    "default+instance_norm": {**DEFAULT, "pointnet_norm": "instance"},
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--train-frames", type=int, default=3008)
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, from: {', '.join(VARIANTS)}; or JSON changes")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--probe", action="store_true",
                        help="also probe each variant's keypoints for the RAM state (probe_state.py)")
    parser.add_argument("--data-dir", default=None, help="TFDS data directory (default: the run's)")
    parser.add_argument("--out", default=None, help="JSON results (default RUN_DIR/pointnet_alone.json)")
    parser.add_argument("--saved", action="store_true",
                        help="also score the run's saved PointNets on the same frames: best.keras and, "
                             "if the final phase ran, joint.keras (rows 'saved:best', 'saved:joint')")
    parser.add_argument("--split", default="test", choices=("validation", "test"),
                        help="split the PointNets are scored on (validation to choose a setting)")
    args = parser.parse_args(argv)
    if args.probe and args.split != "test":
        raise SystemExit("pointnet_alone.py: error: --probe scores the test split; leave out --probe "
                         "with --split validation")
    return args


def error_maps_of(model, frames, batch_size=64):
    maps = [model.predict_keypoints(frames[i:i + batch_size])["error_maps"].numpy().astype(np.float16)
            for i in range(0, len(frames), batch_size)]
    return np.concatenate(maps)


def cached_maps(run_dir: Path, config, train_frames: int, data, split: str = "test"):
    """(train maps, maps of `data`, the evaluation split's frames) from the run's model, cached
    beside it (one cache per evaluation split)."""
    cache = run_dir / ("pointnet_alone_cache.npz" if split == "test" else f"pointnet_alone_cache_{split}.npz")
    if cache.exists():
        stored = np.load(cache)
        if len(stored["train"]) == train_frames and len(stored["test"]) == len(data.frames):
            return stored["train"], stored["test"]
    import keras

    import permakey_tf.models.permakey  # noqa: F401  (registers the classes)
    from permakey_tf.data import loading, pipelines

    keras.mixed_precision.set_global_policy(config.train.precision)
    model = keras.models.load_model(run_dir / runs.CHECKPOINT, compile=False)
    d = config.data
    examples = loading.load_split(config.game, "train", data_dir=d.data_dir,
                                    train_frames=d.train_frames, validation_frames=d.validation_frames,
                                    test_frames=d.test_frames, seed=d.dataset_seed,
                                    build_if_missing=False)
    batches = pipelines.frame_batches(examples, batch_size=64, training=False)
    frames = np.concatenate(list(batches.take(-(-train_frames // 64)).as_numpy_iterator()))[:train_frames]
    train, test = error_maps_of(model, frames), error_maps_of(model, data.frames)
    keras.mixed_precision.set_global_policy("float32")
    np.savez_compressed(cache, train=train, test=test)
    return train, test


class ProbeSet:
    """The probes' splits of the run's game with the run's error maps of their frames."""

    def __init__(self, run_dir: Path, data_dir, seed: int = 0):
        from permakey_tf.probes import ram_annotations, state_probe

        run = runs.read_run_folder(run_dir)
        self.splits = probe_inputs.load_probe_splits(run.game, run.config.data.dataset_arguments(data_dir),
                                                    "none", seed, None, progress=False)
        self.variables = state_probe.kept_variables(
            self.splits.ram["train"], ram_annotations.ram_variables(run.game),
            state_probe.ProbeSettings().entropy_threshold)
        self.seed = seed
        predictor = predictions.load_predictor(run, "checkpoint")
        self.error_maps, self.joint_keypoints = {}, {}
        for split, frames in self.splits.frames.items():
            outputs = [predictor(frames[i:i + 64]) for i in range(0, len(frames), 64)]
            self.error_maps[split] = np.concatenate([np.asarray(o["error_maps"], np.float32) for o in outputs])
            self.joint_keypoints[split] = np.concatenate(
                [np.asarray(o["keypoints_pixels"], np.float64) for o in outputs])

    def score(self, keypoints_pixels: dict) -> dict:
        """{split: [N, K, 2]} pixel keypoints -> probe_agent, probe_mean, the probe and readouts."""
        from permakey_tf.probes import representations, state_probe

        encoded = {split: representations.encode_coordinates(p) for split, p in keypoints_pixels.items()}
        probe = state_probe.probe_representation(
            state_probe.ProbeData(encoded, self.splits.ram, self.splits.test_mask), self.variables,
            state_probe.ProbeSettings(seed=self.seed))
        coordinates = {split: representations.keypoint_coordinates(p) for split, p in keypoints_pixels.items()}
        return {"probe_agent": probe["summary"].get("agent_localization", float("nan")),
                "probe_mean": probe["summary"]["mean_over_categories"], "probe": probe,
                "readouts": probe_inputs.position_readouts(coordinates, self.splits, self.variables)}


def keypoint_reader(pointnet, config):
    """error maps ``[N, S, S, L]`` -> pixel keypoints ``[N, K, 2]`` of a PointNet trained alone
    (its batches' own statistics, as it was trained), refined on the maps as the config says
    (``keypoint_refinement_steps``), as the joint model's outputs are."""
    import tensorflow as tf

    from permakey_tf.models.pointnet import keypoint_outputs

    from permakey_tf.models import ops

    @tf.function
    def keypoints(maps):
        points = keypoint_outputs(pointnet, config, maps, training=False, batch_statistics=True)["keypoints"]
        points = ops.mean_shift_keypoints(points, maps, config.keypoint_sigma,
                                          config.keypoint_refinement_steps)
        return ops.keypoints_to_pixels(points, config.image_size)

    def keypoints_of(maps):
        return np.concatenate([keypoints(tf.constant(maps[i:i + 64], tf.float32)).numpy()
                               for i in range(0, len(maps), 64)])

    return keypoints_of


def score_keypoints(config, kps, test_maps, data, seed, keypoints_of=None) -> dict:
    """evaluate.py's metrics of pixel keypoints ``[N, K, 2]`` on ``data`` (with the fixed layout's
    F1), the PointNet loss ratio and the moving-error coverage on ``test_maps``, and (given
    ``keypoints_of``: maps -> keypoints) the shift-equivariance gain."""
    from permakey_tf.scoring import diagnostics, metrics
    from permakey_tf.scoring.quality import error_map_scores

    results = metrics.evaluate_with_baselines(kps, data.objects, episode_ids=data.episode_ids,
                                              steps=data.steps, seed=seed)
    own = results["model"]
    if keypoints_of is not None:
        own.update(diagnostics.shift_equivariance_gain(keypoints_of, test_maps.astype(np.float32), 4,
                                                       keypoints=kps, fill=0.0))
    own.update(error_map_scores(kps, test_maps, config))
    own["fixed_layout_f1"] = results["fixed_layout"]["f1"]
    return own


def train_and_score(config, train_maps, test_maps, data, steps, batch_size, learning_rate, seed,
                    probe_set: "ProbeSet | None" = None):
    from permakey_tf.models.pointnet import fit_pointnet

    start = time.time()
    pointnet = fit_pointnet(config, train_maps, steps, batch_size, learning_rate, seed,
                            config.pointnet_final_sigma_start)
    seconds = time.time() - start
    keypoints_of = keypoint_reader(pointnet, config)
    own = score_keypoints(config, keypoints_of(test_maps), test_maps, data, seed, keypoints_of)
    own["train_seconds"] = seconds
    if probe_set is not None:
        own.update(probe_set.score({split: keypoints_of(maps) for split, maps in probe_set.error_maps.items()}))
    return own


def saved_pointnets(run_dir: Path) -> dict[str, Path]:
    """The run's saved models by name: ``best`` (the checkpoint evaluate.py scores) and, when the
    final PointNet phase ran, ``joint`` (the jointly trained PointNet it started from)."""
    from permakey_tf.training import final_pointnet

    folder = (run_dir / runs.CHECKPOINT).parent
    found = {"best": run_dir / runs.CHECKPOINT, "joint": folder / final_pointnet.JOINT_CHECKPOINT}
    return {name: path for name, path in found.items() if path.exists()}


def score_saved(path: Path, config, test_maps, data) -> dict:
    """:func:`score_keypoints` of a saved model's own keypoints on ``data.frames``."""
    import keras

    import permakey_tf.models.permakey  # noqa: F401  (registers the classes)
    from permakey_tf.scoring.quality import model_outputs

    keras.mixed_precision.set_global_policy(config.train.precision)
    model = keras.models.load_model(path, compile=False)
    keypoints = model_outputs(model, data.frames)["keypoints_pixels"]
    keras.mixed_precision.set_global_policy("float32")
    return score_keypoints(config.model_config, keypoints, test_maps, data, seed=0)


COLUMNS = ("recall", "precision", "f1", "fixed_layout_f1", "border_share", "hud_share", "shift_gain",
           "probe_r2", "pointnet_loss_ratio", "moving_error_coverage", "moving_error_coverage_gain")
PROBE_COLUMNS = ("probe_agent", "probe_mean")


def _print_readouts(readouts: dict) -> None:
    for variable, r in readouts.items():
        if "error" not in r:
            print(f"    {variable}: kp{r['keypoint']} {r['axis']} median error "
                  f"{r['abs_error_quantiles']['q50']:.2f} steps, exact {r['within']['0']:.2f}, "
                  f"within 1 {r['within']['1']:.2f}, F1 {r['f1']:.3f}")


def main(argv=None) -> int:
    args = parse_args(argv)

    run_dir = Path(args.run_dir)
    config = runs.load_config(run_dir)
    data = predictions.load_eval_set(config.game, "none", config.data.dataset_arguments(args.data_dir), split=args.split, progress=False)
    train_maps, test_maps = cached_maps(run_dir, config, args.train_frames, data, args.split)
    print(f"{config.game}: error maps {train_maps.shape} train, {test_maps.shape} {args.split}")
    rows, classes = [], None
    columns = COLUMNS + (PROBE_COLUMNS if args.probe else ())
    probe_set = ProbeSet(run_dir, args.data_dir) if args.probe else None
    if probe_set is not None:
        joint = probe_set.score(probe_set.joint_keypoints)
        rows.append({"variant": "joint", "changes": {}, "seed": None, "results": joint})
        print(f"joint (the run's own PointNet): probe agent localisation {joint['probe_agent']:.3f}, "
              f"mean over categories {joint['probe_mean']:.3f}")
        _print_readouts(joint["readouts"])
    if args.saved:
        for name, path in saved_pointnets(run_dir).items():
            own = score_saved(path, config, test_maps, data)
            rows.append({"variant": f"saved:{name}", "changes": {}, "seed": None, "results": own})
            shown = [c for c in columns if c in own] + sorted(k for k in own if k.startswith("recall_class/"))
            print(f"saved:{name}: " + ", ".join(f"{c.replace('recall_class/', 'R_')} {own[c]:.3f}"
                                                for c in shown), flush=True)
    for name in (n for n in args.variants.split(",") if n):
        changes = VARIANTS[name] if name in VARIANTS else json.loads(name)
        for seed in (int(s) for s in args.seeds.split(",")):
            model_config = config.model_config.replace(**changes)
            own = train_and_score(model_config, train_maps, test_maps, data, args.steps,
                                  args.batch_size, args.learning_rate, seed, probe_set)
            rows.append({"variant": name, "changes": changes, "seed": seed, "results": own})
            if classes is None:
                classes = tuple(sorted(k for k in own if k.startswith("recall_class/")))[:6]
                print(f"{'variant':32} seed " + " ".join(
                    f"{c.replace('recall_class/', 'R_')[:12]:>12}" for c in columns + classes))
            print(f"{name[:32]:32} {seed:4} " + " ".join(
                f"{own.get(c, float('nan')):12.3f}" for c in columns + tuple(classes)), flush=True)
            if probe_set is not None:
                _print_readouts(own["readouts"])
    out = Path(args.out) if args.out else run_dir / "pointnet_alone.json"
    from permakey_tf.scoring.metrics import json_ready

    out.write_text(json.dumps(json_ready({"run": str(run_dir), "split": args.split, "steps": args.steps,
                                          "rows": rows}), indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
