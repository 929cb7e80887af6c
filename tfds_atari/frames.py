"""Frame processing shared by every code path: max-pool two emulator frames, resize to 84x84.

The ALE screen is 210 rows x 160 columns of RGB. Every frame that enters the dataset, a figure or a
served model goes through `resize_frame`, so there is exactly one resize in the project (area
interpolation, which keeps 1-pixel bullets visible; docs/BACKGROUND.md section 7).
"""

from __future__ import annotations

import cv2
import numpy as np

NATIVE_HEIGHT = 210
NATIVE_WIDTH = 160
FRAME_SIZE = 84


def resize_frame(rgb: np.ndarray) -> np.ndarray:
    """Resizes one native ALE screen to the dataset's frame size.

    Args:
      rgb: uint8 [210, 160, 3] RGB screen.

    Returns:
      uint8 [84, 84, 3] RGB frame, area interpolation (cv2.INTER_AREA).
    """
    rgb = np.asarray(rgb)
    if rgb.shape != (NATIVE_HEIGHT, NATIVE_WIDTH, 3) or rgb.dtype != np.uint8:
        raise ValueError(
            f"resize_frame expects a uint8 [{NATIVE_HEIGHT}, {NATIVE_WIDTH}, 3] RGB ALE screen, got "
            f"{rgb.dtype} {list(rgb.shape)}; pass ale.getScreenRGB() (or the max of two of them)."
        )
    return cv2.resize(rgb, (FRAME_SIZE, FRAME_SIZE), interpolation=cv2.INTER_AREA)


def max_pool_screens(previous: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Element-wise max of the last two emulator screens (removes Atari sprite flicker).

    Args:
      previous, last: uint8 [210, 160, 3] screens of two consecutive emulator frames.

    Returns:
      uint8 [210, 160, 3].
    """
    return np.maximum(previous, last)


def encode_png(frame: np.ndarray) -> bytes:
    """PNG bytes of an RGB frame (what tfds.features.Image stores; decodes back to RGB).

    Args:
      frame: uint8 [H, W, 3] RGB.
    """
    ok, buffer = cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("cv2.imencode failed to encode a frame as PNG")
    return buffer.tobytes()
