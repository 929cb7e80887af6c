"""Keypoints as features for your own agent: play a game and read each frame's keypoints.

    python examples/keypoints_for_agent.py runs/pong/permakey/RUN/export/1 --game pong --steps 200

Loads an exported SavedModel (train.py writes one per run under RUN_DIR/export/<version>), plays
the game with ale-py, preprocesses every step exactly as the training data were made (4 emulator
frames per step, the max of the last two screens, area-resized to 84x84 RGB), and asks the model
for that frame's keypoints. The agent here acts at random; replace ``choose_action`` by your
policy, which receives the keypoints ``[K, 2]`` (x, y pixels of the 84x84 frame).

Writes ``--out`` (default ``keypoints_for_agent/``): ``keypoints.npz`` (``keypoints`` float32
``[steps, K, 2]``, ``actions`` ``[steps]``, ``frames`` uint8 ``[steps, 84, 84, 3]``) and
``frames.png``, a few frames with their keypoints drawn.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def choose_action(keypoints: np.ndarray, num_actions: int, rng: np.random.Generator) -> int:
    """Your agent goes here: keypoints ``[K, 2]`` (x, y pixels) -> an index into the game's
    minimal action set. This one ignores them and acts at random."""
    del keypoints
    return int(rng.integers(num_actions))


def play(saved_model: str, game: str, steps: int, seed: int = 0):
    """(frames uint8 [steps, 84, 84, 3], keypoints float32 [steps, K, 2], actions int [steps])."""
    import tensorflow as tf

    from tfds_atari.emulator import AtariEmulator
    from tfds_atari.games import get_game

    model = tf.saved_model.load(saved_model)
    serve = model.signatures["serving_default"]
    emulator = AtariEmulator(get_game(game), seed=seed)
    emulator.reset()
    rng = np.random.default_rng(seed)
    frames, keypoints, actions = [], [], []
    action = 0
    for _ in range(steps):
        frame = emulator.step(action)
        if emulator.game_over():
            emulator.reset()
        points = serve(frames=tf.constant(frame[None]))["keypoints_pixels"].numpy()[0]  # [K, 2]
        action = choose_action(points, emulator.num_actions, rng)
        frames.append(frame)
        keypoints.append(points)
        actions.append(action)
    return np.stack(frames), np.stack(keypoints).astype(np.float32), np.asarray(actions)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("saved_model", help="an export version folder (holds saved_model.pb)")
    parser.add_argument("--game", required=True, help="the game the model was trained on")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="keypoints_for_agent")
    args = parser.parse_args(argv)
    if not (Path(args.saved_model) / "saved_model.pb").exists():
        parser.error(f"{args.saved_model} holds no saved_model.pb: pass RUN_DIR/export/<version>")
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    from permakey_tf import console

    console.quiet_tensorflow()
    from permakey_tf.viz import plot_keypoints

    frames, keypoints, actions = play(args.saved_model, args.game, args.steps, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "keypoints.npz", keypoints=keypoints, actions=actions, frames=frames)
    shown = np.linspace(0, len(frames) - 1, min(8, len(frames))).astype(int)
    plot_keypoints(frames[shown], keypoints[shown], titles=[f"step {i}" for i in shown],
                   path=str(out / "frames.png"))
    print(f"{len(frames)} steps, {keypoints.shape[1]} keypoints per frame -> {out / 'keypoints.npz'}, "
          f"{out / 'frames.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
