"""Synthetic in-memory examples with the dataset's structure, shared by the pipeline tests (not a
test module).

Every synthetic frame is a constant colour that encodes its index (R = index % 256,
G = index // 256, B = 7), so a frame can be identified from any pixel the bars did not cover.
"""

import numpy as np
import tensorflow as tf

from permakey_tf.data.noise import NoiseConfig

NOISE = NoiseConfig(mode="both")


def episodes(lengths):
    episode_ids = np.concatenate([np.full(n, e, np.int32) for e, n in enumerate(lengths)])
    steps = np.concatenate([np.arange(n, dtype=np.int32) for n in lengths])
    return episode_ids, steps


def frames_for(indices):
    indices = np.asarray(indices)
    colours = np.stack([indices % 256, indices // 256, np.full_like(indices, 7)], -1)
    return np.broadcast_to(colours[:, None, None, :], (len(indices), 84, 84, 3)).astype(np.uint8)


def frame_dataset(lengths):
    episode_ids, steps = episodes(lengths)
    images = frames_for(np.arange(len(steps)))
    return tf.data.Dataset.from_tensor_slices(
        {"image": images, "episode_id": episode_ids, "step": steps}
    )


def identify(images, masks):
    """Frame index of each noisy frame, read from a pixel no bar covers."""
    ids = []
    for image, mask in zip(images, masks):
        row, col = np.argwhere(~mask)[0]
        red, green, blue = image[row, col].astype(int)
        assert blue == 7
        ids.append(red + 256 * green)
    return np.array(ids)


def epoch_arrays(pipeline):
    """One pass as numpy: (frames [N,84,84,3], masks [N,84,84])."""
    frames, masks = zip(*[(f.numpy(), m.numpy()) for f, m in pipeline])
    return np.concatenate(frames), np.concatenate(masks)


def pair_arrays(pipeline):
    sources, targets, infos = [], [], []
    for source, target, info in pipeline:
        sources.append(source.numpy())
        targets.append(target.numpy())
        infos.append({k: v.numpy() for k, v in info.items()})
    info = {k: np.concatenate([i[k] for i in infos]) for k in infos[0]}
    return np.concatenate(sources), np.concatenate(targets), info
