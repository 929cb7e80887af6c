"""Figures: keypoint overlays and the paper's figure layouts (matplotlib, Agg, no pyplot state).

All functions take numpy arrays: frames uint8 ``[..., 84, 84, 3]``, keypoints ``(x, y)`` continuous
pixel coordinates (docs/ARCHITECTURE.md). Figure functions return a ``matplotlib.figure.Figure``
and also write a PNG when given ``path``; :func:`overlay_grid` returns a uint8 image for
TensorBoard. Keypoint k has the same colour in every figure (:func:`keypoint_colors`).
"""

from __future__ import annotations

import math
import os
from typing import Mapping, Optional, Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Circle  # noqa: E402


def keypoint_colors(num_keypoints: int) -> np.ndarray:
    """``[K, 3]`` uint8 distinct colours; keypoint k gets the same colour for any K >= k."""
    palette = np.concatenate(
        [colormaps["tab10"](np.arange(10))[:, :3], colormaps["Set3"](np.arange(12))[:, :3],
         colormaps["Dark2"](np.arange(8))[:, :3]]
    )
    extra = max(0, num_keypoints - len(palette))
    if extra:
        palette = np.concatenate([palette, colormaps["hsv"](np.linspace(0, 1, extra, endpoint=False))[:, :3]])
    return np.round(palette[:num_keypoints] * 255).astype(np.uint8)


def _as_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
        raise ValueError(f"frames must be [N, H, W, 3] (or [H, W, 3]), got shape {frames.shape}")
    if frames.dtype != np.uint8:
        if frames.size and frames.max() <= 1.0:
            frames = frames * 255.0
        frames = np.clip(np.round(frames), 0, 255).astype(np.uint8)
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    return frames


def _as_keypoints(keypoints: np.ndarray, num_frames: int) -> np.ndarray:
    keypoints = np.asarray(keypoints, np.float64)
    if keypoints.ndim == 2:
        keypoints = keypoints[None]
    if keypoints.ndim != 3 or keypoints.shape[-1] != 2 or keypoints.shape[0] != num_frames:
        raise ValueError(
            f"keypoints must be [N, K, 2] (x, y) pixels with N = {num_frames} frames, "
            f"got shape {keypoints.shape}"
        )
    return keypoints


def draw_keypoints(image: np.ndarray, keypoints: np.ndarray, scale: int = 1,
                   radius: Optional[float] = None, colors: Optional[np.ndarray] = None) -> np.ndarray:
    """Draws keypoints as filled discs with a black rim onto an upscaled copy of one frame.

    Args:
      image: ``[H, W, 3]`` uint8.
      keypoints: ``[K, 2]`` ``(x, y)`` pixels of the frame (before scaling).
      scale: integer nearest-neighbour upscaling (markers are easier to see on 84x84 frames).
      radius: marker radius in output pixels (default ``1.5 * scale``).
      colors: ``[K, 3]`` uint8 (default :func:`keypoint_colors`).

    Returns:
      ``[H * scale, W * scale, 3]`` uint8.
    """
    image = _as_frames(image)[0]
    keypoints = _as_keypoints(keypoints, 1)[0]
    colors = keypoint_colors(len(keypoints)) if colors is None else np.asarray(colors, np.uint8)
    out = np.repeat(np.repeat(image, scale, 0), scale, 1).copy()
    radius = 1.5 * scale if radius is None else float(radius)
    rim = radius + max(1.0, 0.5 * scale)
    height, width = out.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    for (x, y), color in zip(keypoints * scale, colors):
        y0, y1 = int(max(0, math.floor(y - rim - 1))), int(min(height, math.ceil(y + rim + 1)))
        x0, x1 = int(max(0, math.floor(x - rim - 1))), int(min(width, math.ceil(x + rim + 1)))
        if y0 >= y1 or x0 >= x1:
            continue
        dist = np.hypot(xs[y0:y1, x0:x1] - x, ys[y0:y1, x0:x1] - y)
        patch = out[y0:y1, x0:x1]
        patch[dist <= rim] = 0
        patch[dist <= radius] = color
    return out


def overlay_grid(frames: np.ndarray, keypoints_pixels: np.ndarray, columns: int = 8, scale: int = 2,
                 padding: int = 2, radius: Optional[float] = None) -> np.ndarray:
    """Frames with their keypoints, tiled into one image (e.g. for TensorBoard).

    Args:
      frames: ``[N, H, W, 3]`` uint8 (floats in [0, 1] are accepted too).
      keypoints_pixels: ``[N, K, 2]`` ``(x, y)`` pixels.
      columns: tiles per row.
      scale: upscaling of each frame.
      padding: white pixels between tiles.
      radius: marker radius in output pixels.

    Returns:
      ``[rows * (H*scale + padding) + padding, columns' * (W*scale + padding) + padding, 3]`` uint8
      with ``rows = ceil(N / columns)`` and ``columns' = min(N, columns)``.
    """
    frames = _as_frames(frames)
    keypoints = _as_keypoints(keypoints_pixels, len(frames))
    n, height, width = frames.shape[:3]
    if n == 0:
        raise ValueError("overlay_grid needs at least one frame")
    cols = max(1, min(columns, n))
    rows = math.ceil(n / cols)
    th, tw = height * scale, width * scale
    grid = np.full([rows * (th + padding) + padding, cols * (tw + padding) + padding, 3], 255, np.uint8)
    colors = keypoint_colors(keypoints.shape[1])
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = padding + r * (th + padding), padding + c * (tw + padding)
        grid[top:top + th, left:left + tw] = draw_keypoints(frames[i], keypoints[i], scale, radius, colors)
    return grid


# --------------------------------------------------------------------------------------------------
# matplotlib figures


def _finish(fig: Figure, path: Optional[str], dpi: int = 100) -> Figure:
    if path is not None:
        folder = os.path.dirname(os.fspath(path))
        if folder:
            os.makedirs(folder, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    return fig


def _axes_grid(rows: int, cols: int, cell: float = 1.6, title_space: float = 0.0):
    fig = Figure(figsize=(cols * cell + 1.2, rows * cell + title_space))
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def _scatter(ax, keypoints: np.ndarray, colors: np.ndarray, size: float = 28, marker: str = "o",
             label: Optional[str] = None):
    ax.scatter(keypoints[:, 0], keypoints[:, 1], s=size, c=colors / 255.0, marker=marker,
               edgecolors="black", linewidths=0.6, label=label)


def plot_keypoints(frames: np.ndarray, keypoints: np.ndarray, titles: Optional[Sequence[str]] = None,
                   columns: int = 8, path: Optional[str] = None) -> Figure:
    """A grid of frames with their keypoints. frames ``[N, H, W, 3]``, keypoints ``[N, K, 2]``."""
    frames = _as_frames(frames)
    keypoints = _as_keypoints(keypoints, len(frames))
    cols = max(1, min(columns, len(frames)))
    rows = math.ceil(len(frames) / cols)
    fig, axes = _axes_grid(rows, cols)
    colors = keypoint_colors(keypoints.shape[1])
    height, width = frames.shape[1:3]
    for i, ax in enumerate(axes.ravel()):
        if i >= len(frames):
            ax.axis("off")
            continue
        ax.imshow(frames[i], extent=(0, width, height, 0), interpolation="nearest")
        _scatter(ax, keypoints[i], colors)
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    fig.tight_layout()
    return _finish(fig, path)


def plot_figure2(images: np.ndarray, keypoint_rows: Mapping[str, np.ndarray],
                 error_maps: Optional[np.ndarray] = None, column_titles: Optional[Sequence[str]] = None,
                 layer_names: Optional[Sequence[str]] = None, path: Optional[str] = None) -> Figure:
    """The paper's Figure 2 layout: one column per frame; rows image / each model's keypoints
    (e.g. ``{"Transporter": ..., "PermaKey": ...}``) / one row per error-map layer.

    Args:
      images: ``[C, H, W, 3]`` frames.
      keypoint_rows: row name -> ``[C, K, 2]`` ``(x, y)`` pixels (K may differ between rows).
      error_maps: optional ``[C, H, W, L]`` PermaKey error maps in [0, 1].
      column_titles: optional ``C`` titles (e.g. game names).
      layer_names: optional ``L`` row labels for the error maps (default "error map layer l").
    """
    images = _as_frames(images)
    count, height, width = images.shape[:3]
    rows = {name: _as_keypoints(k, count) for name, k in keypoint_rows.items()}
    maps = None
    if error_maps is not None:
        maps = np.asarray(error_maps, np.float64)
        if maps.ndim != 4 or maps.shape[0] != count:
            raise ValueError(f"error_maps must be [C, H, W, L] with C = {count}, got {maps.shape}")
    num_layers = 0 if maps is None else maps.shape[-1]
    names = list(layer_names) if layer_names is not None else [f"error map {l}" for l in range(num_layers)]
    fig, axes = _axes_grid(1 + len(rows) + num_layers, count)
    for c in range(count):
        axes[0, c].imshow(images[c], extent=(0, width, height, 0), interpolation="nearest")
        if column_titles is not None:
            axes[0, c].set_title(column_titles[c], fontsize=8)
        for r, (name, kps) in enumerate(rows.items(), start=1):
            axes[r, c].imshow(images[c], extent=(0, width, height, 0), interpolation="nearest")
            _scatter(axes[r, c], kps[c], keypoint_colors(kps.shape[1]))
        for l in range(num_layers):
            axes[1 + len(rows) + l, c].imshow(maps[c, :, :, l], cmap="viridis", vmin=0, vmax=1,
                                              extent=(0, width, height, 0), interpolation="nearest")
    labels = ["image", *rows, *names]
    for r, label in enumerate(labels):
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    return _finish(fig, path)


def gaussian_windows(keypoints: np.ndarray, sigma: float, image_size: int = 84) -> np.ndarray:
    """``[H, W, K]`` maps ``exp(-d^2 / sigma^2)`` around ``[K, 2]`` pixel keypoints, with sigma in
    the models' ``[-1, 1]`` units (ops.keypoints_to_gaussian_maps, rendered at pixel centres)."""
    keypoints = np.asarray(keypoints, np.float64).reshape(-1, 2)
    sigma_px = sigma * (image_size - 1) / 2.0
    centres = np.arange(image_size) + 0.5
    dx = centres[None, :, None] - keypoints[None, None, :, 0]
    dy = centres[:, None, None] - keypoints[None, None, :, 1]
    return np.exp(-(dx**2 + dy**2) / sigma_px**2)


def plot_gaussian_windows(image: np.ndarray, keypoints: np.ndarray, sigma: float = 0.1,
                          gaussian_maps: Optional[np.ndarray] = None, title: Optional[str] = None,
                          path: Optional[str] = None) -> Figure:
    """The paper's Figure 4: keypoint centres (numbered) and their Gaussian windows.

    Args:
      image: ``[H, W, 3]`` frame.
      keypoints: ``[K, 2]`` ``(x, y)`` pixels.
      sigma: window width in ``[-1, 1]`` units (circles are drawn at one sigma).
      gaussian_maps: optional ``[H, W, K]`` maps from the model; rendered from sigma otherwise.
    """
    image = _as_frames(image)[0]
    keypoints = _as_keypoints(keypoints, 1)[0]
    height, width = image.shape[:2]
    maps = gaussian_windows(keypoints, sigma, width) if gaussian_maps is None else np.asarray(gaussian_maps)
    if maps.ndim != 3 or maps.shape[-1] != len(keypoints):
        raise ValueError(f"gaussian_maps must be [H, W, K={len(keypoints)}], got {maps.shape}")
    colors = keypoint_colors(len(keypoints))
    fig, axes = _axes_grid(1, 3, cell=2.8)
    extent = (0, width, height, 0)
    axes[0, 0].imshow(image, extent=extent, interpolation="nearest")
    _scatter(axes[0, 0], keypoints, colors, size=40)
    for k, (x, y) in enumerate(keypoints):
        axes[0, 0].annotate(str(k), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=6,
                            color="white")
    axes[0, 0].set_title("keypoint centres", fontsize=8)
    axes[0, 1].imshow(maps.max(-1), cmap="magma", vmin=0, vmax=1, extent=extent, interpolation="nearest")
    axes[0, 1].set_title("Gaussian windows (max over K)", fontsize=8)
    axes[0, 2].imshow(image, extent=extent, interpolation="nearest")
    axes[0, 2].imshow(maps.max(-1), cmap="magma", alpha=0.55, vmin=0, vmax=1, extent=extent)
    sigma_px = sigma * (width - 1) / 2.0
    for (x, y), color in zip(keypoints, colors):
        axes[0, 2].add_patch(Circle((x, y), sigma_px, fill=False,
                                                       edgecolor=color / 255.0, linewidth=1.0))
    axes[0, 2].set_xlim(0, width)
    axes[0, 2].set_ylim(height, 0)
    axes[0, 2].set_title("windows on the frame (1 sigma)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _finish(fig, path)


def plot_seed_overlay(image: np.ndarray, keypoints_by_seed: Mapping[str, np.ndarray],
                      title: Optional[str] = None, path: Optional[str] = None) -> Figure:
    """The paper's Figure 3: keypoints of several seeds on the same frames, one colour and marker
    per seed, one panel per frame.

    Args:
      image: ``[H, W, 3]`` frame or ``[F, H, W, 3]`` frames.
      keypoints_by_seed: label (e.g. "seed 1") -> ``[K, 2]`` or ``[F, K, 2]`` ``(x, y)`` pixels.
    """
    frames = _as_frames(image)
    height, width = frames.shape[1:3]
    fig, axes = _axes_grid(1, len(frames), cell=3.6)
    seed_colors = keypoint_colors(max(1, len(keypoints_by_seed)))
    markers = "os^Dv<>phX*"
    by_seed = {label: _as_keypoints(kps, len(frames)) for label, kps in keypoints_by_seed.items()}
    for f, ax in enumerate(axes[0]):
        ax.imshow(frames[f], extent=(0, width, height, 0), interpolation="nearest")
        for i, (label, kps) in enumerate(by_seed.items()):
            _scatter(ax, kps[f], np.repeat(seed_colors[i:i + 1], kps.shape[1], 0), size=30,
                     marker=markers[i % len(markers)], label=label if f == 0 else None)
    axes[0, 0].legend(fontsize=6, loc="upper right", framealpha=0.7)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return _finish(fig, path)


def plot_ablation(settings: Sequence[str], series: Mapping[str, Sequence[float]],
                  errors: Optional[Mapping[str, Sequence[float]]] = None, ylabel: str = "F1",
                  title: Optional[str] = None, path: Optional[str] = None) -> Figure:
    """A grouped bar chart: a metric (``ylabel``) for each ablation setting (e.g. K = 15/20/25),
    one bar per series (e.g. "PermaKey", "fixed layout", "random").

    Args:
      settings: the x-axis labels, S of them.
      series: name -> S values (NaN leaves a gap).
      errors: optional name -> S standard deviations (e.g. over seeds).
    """
    num = len(settings)
    for name, values in series.items():
        if len(values) != num:
            raise ValueError(f"series {name!r} has {len(values)} values for {num} settings")
    fig = Figure(figsize=(max(3.5, 0.9 * num * max(1, len(series)) * 0.6 + 2), 3.0))
    ax = fig.subplots()
    width = 0.8 / max(1, len(series))
    colors = keypoint_colors(max(1, len(series)))
    positions = np.arange(num)
    for i, (name, values) in enumerate(series.items()):
        err = None if errors is None or name not in errors else np.asarray(errors[name], float)
        ax.bar(positions + (i - (len(series) - 1) / 2) * width, np.asarray(values, float), width,
               yerr=err, label=name, color=colors[i] / 255.0, edgecolor="black", linewidth=0.5,
               capsize=2)
    ax.set_xticks(positions)
    ax.set_xticklabels(list(settings), fontsize=8)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _finish(fig, path)


def plot_quality_curves(curves: Mapping[int, Mapping[str, Mapping[int, float]]], metrics: Sequence[str],
                        title: Optional[str] = None, marks: Sequence[int] = (),
                        path: Optional[str] = None) -> Figure:
    """Per-epoch quality over seeds (``{seed: {metric: {epoch: value}}}``,
    permakey_tf.evaluation.quality_curve): one panel per metric, one line per seed, the fixed
    layout's F1 dashed in the ``f1`` panel, grey vertical lines at the ``marks`` epochs."""
    panels = [m for m in metrics if m != "fixed_layout_f1"]
    columns = max(1, min(3, len(panels)))
    rows = max(1, math.ceil(len(panels) / columns))
    fig = Figure(figsize=(4.2 * columns, 3.0 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]

    def line(ax, values: Mapping[int, float], **style):
        epochs = sorted(values)
        ax.plot(epochs, [values[e] for e in epochs], **style)

    for ax, metric in zip(axes.flat, panels):
        for index, (seed, curve) in enumerate(sorted(curves.items())):
            colour = colours[index % len(colours)]
            line(ax, curve.get(metric, {}), marker=".", color=colour, label=f"seed {seed}")
            if metric == "f1" and "fixed_layout_f1" in curve:
                line(ax, curve["fixed_layout_f1"], linestyle="--", color=colour, alpha=0.7)
        for epoch in marks:
            ax.axvline(epoch, color="grey", linewidth=0.6)
        ax.set_title(metric + (" (dashed: fixed layout)" if metric == "f1" else ""), fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _finish(fig, path, dpi=90)
