"""Frame representations that the state probes read, all ``[N, F]`` float (numpy only).

Keypoints give 2K numbers per frame. A linear classifier over 256 byte values cannot read a
position out of one number well: it must carve the number's range into one interval per value
with affine scores, which Adam does not find in the benchmark's 100 epochs (tests show a feature
that *is* the exact coordinate scoring F1 < 0.2). So besides the raw coordinates we probe a fixed
expansion of the same numbers, each coordinate as its responses to Gaussian bumps spread over
the frame (``encode_coordinates``): it adds no information (it is a fixed function of the 2K
coordinates, like the Gaussian maps the model itself renders from them) and lets a linear probe
read where a keypoint is.
"""

from __future__ import annotations

import numpy as np

IMAGE_SIZE = 84
ENCODING_SPACING_PX = 2.0


def keypoint_coordinates(keypoints_pixels: np.ndarray) -> np.ndarray:
    """``[N, K, 2]`` (x, y) pixels -> ``[N, 2K]``."""
    keypoints_pixels = np.asarray(keypoints_pixels, np.float64)
    if keypoints_pixels.ndim != 3 or keypoints_pixels.shape[-1] != 2:
        raise ValueError(f"keypoints must be [N, K, 2] (x, y) pixels, got {keypoints_pixels.shape}")
    return keypoints_pixels.reshape(len(keypoints_pixels), -1)


def encode_coordinates(keypoints_pixels: np.ndarray, spacing: float = ENCODING_SPACING_PX,
                       image_size: int = IMAGE_SIZE) -> np.ndarray:
    """Each coordinate's responses to Gaussian bumps (width = spacing) every ``spacing`` pixels.

    Returns:
      ``[N, 2K * B]`` with B = image_size / spacing bumps per coordinate.
    """
    coordinates = keypoint_coordinates(keypoints_pixels)  # [N, 2K]
    centres = np.arange(spacing / 2, image_size, spacing)
    responses = np.exp(-0.5 * ((coordinates[..., None] - centres) / spacing) ** 2)
    return responses.reshape(len(coordinates), -1)


def window_features(feature_maps: np.ndarray, gaussian_maps: np.ndarray) -> np.ndarray:
    """The mean of a feature map under each keypoint's Gaussian window: ``[N, K * C]``.

    A feature map coarser than the Gaussian maps (an encoder block, stride s) is read with the
    windows summed over each s x s block of pixels, so every feature cell weighs the window mass
    over the pixels it covers.

    Args:
      feature_maps: ``[N, h, w, C]`` float; gaussian_maps: ``[N, H, W, K]`` (the model's output)
        with H, W multiples of h, w.
    """
    features = np.asarray(feature_maps, np.float32)
    maps = np.asarray(gaussian_maps, np.float32)
    (n, h, w, _), (n_maps, height, width, k) = features.shape, maps.shape
    if n != n_maps or height % h or width % w or height // h != width // w:
        raise ValueError(f"feature maps {features.shape} and gaussian maps {maps.shape} must share N, "
                         "and the maps' H, W must be one multiple of the features' h, w")
    stride = height // h
    maps = maps.reshape(n, h, stride, w, stride, k).sum((2, 4))
    weights = maps / np.maximum(maps.sum((1, 2), keepdims=True), 1e-6)
    return np.einsum("nhwk,nhwc->nkc", weights, features).reshape(n, -1)


def window_colours(frames: np.ndarray, gaussian_maps: np.ndarray) -> np.ndarray:
    """The mean colour under each keypoint's Gaussian window: ``[N, K * 3]`` in [0, 1].

    Args:
      frames: uint8 ``[N, H, W, 3]``; gaussian_maps: ``[N, H, W, K]`` (the model's output).
    """
    return window_features(np.asarray(frames, np.float32) / 255.0, gaussian_maps)


def downsampled_pixels(frames: np.ndarray, factor: int = 4) -> np.ndarray:
    """Raw pixels averaged over ``factor`` x ``factor`` blocks: ``[N, (H/f) * (W/f) * 3]`` in [0, 1]."""
    frames = np.asarray(frames, np.float32) / 255.0
    n, h, w, c = frames.shape
    if h % factor or w % factor:
        raise ValueError(f"frames {h}x{w} do not divide into {factor}x{factor} blocks")
    blocks = frames.reshape(n, h // factor, factor, w // factor, factor, c).mean((2, 4))
    return blocks.reshape(n, -1)
