"""Pictures of a search: architecture weights as heatmaps and genotype cells as drawn graphs,
rendered with matplotlib (no system graphviz) to PNG files or image arrays for TensorBoard."""

from __future__ import annotations

import io
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import topology  # noqa: E402
from topology import edge_labels, state_labels  # noqa: E402, F401  (drawn labels)


def saved_figure(figure, path: str | Path) -> np.ndarray:
    """Write a figure to `path` (PNG) and return the same picture as an image array, rendered
    once."""
    data = rendered_png(figure)
    Path(path).write_bytes(data)
    return png_array(data)


def rendered_png(figure, dpi: int = 110) -> bytes:
    """A figure as PNG bytes, cropped to its content; the figure is closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def png_array(data: bytes) -> np.ndarray:
    """PNG bytes as an HxWx3 uint8 array (for SummaryWriter.add_image, dataformats HWC)."""
    image = plt.imread(io.BytesIO(data), format="png")
    return (image[..., :3] * 255).astype(np.uint8)


class FigureCache:
    """The pictures a run redraws every epoch, rendered again only when what they show changed
    (the alphas stand still through the warm-up; a genotype holds for many epochs): each name
    keeps the key of what it last drew and the image array."""

    def __init__(self):
        self._last: dict[str, tuple[object, np.ndarray]] = {}

    def image(self, name: str, key, draw, path: str | Path | None = None) -> np.ndarray:
        """The image of `draw()` (a function returning a figure) for `key` (anything comparable
        that determines the picture); also written to `path` when given and redrawn."""
        last = self._last.get(name)
        if last is not None and _same(last[0], key) and (path is None or Path(path).exists()):
            return last[1]
        figure = draw()
        image = saved_figure(figure, path) if path is not None else figure_to_array(figure)
        self._last[name] = (key, image)
        return image


def _same(a, b) -> bool:
    """Keys compare by value; arrays (alphas, probabilities) element by element."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    return a == b


def epochs_heatmap(series: np.ndarray, row_labels: list[str], title: str):
    """A figure of values over the epochs: one row per label, one column per epoch."""
    figure, axis = plt.subplots(figsize=(1.5 + 0.25 * series.shape[1], 0.8 + 0.3 * len(series)))
    image = axis.imshow(series, cmap="viridis", vmin=0.0, aspect="auto")
    axis.set_yticks(range(len(series)), row_labels, fontsize=7)
    axis.set_xlabel("epoch", fontsize=8)
    axis.set_title(title, fontsize=9)
    figure.colorbar(image, ax=axis, fraction=0.04)
    return figure


def figure_to_array(figure, dpi: int = 90) -> np.ndarray:
    """Render a figure to an HxWx3 uint8 array (for SummaryWriter.add_image, dataformats HWC)."""
    return png_array(rendered_png(figure, dpi))


def alpha_heatmap(weights: np.ndarray, candidates: list[str], title: str, row_labels=None):
    """A figure of softmax(alpha): one row per edge (or per `row_labels`), one column per
    candidate op."""
    if row_labels is None:
        row_labels = edge_labels(topology.steps_for_edges(weights.shape[0]))
    figure, axis = plt.subplots(figsize=(1.0 + 0.55 * len(candidates), 0.8 + 0.3 * len(weights)))
    image = axis.imshow(weights, cmap="viridis", vmin=0.0, aspect="auto")
    axis.set_xticks(range(len(candidates)), candidates, rotation=70, ha="right", fontsize=7)
    axis.set_yticks(range(len(weights)), row_labels, fontsize=7)
    axis.set_title(title, fontsize=9)
    figure.colorbar(image, ax=axis, fraction=0.04)
    return figure


def draw_cell(edges, concat, title: str):
    """A figure of one genotype cell: inputs on the left, nodes in a column, output on the right."""
    steps = topology.genotype_steps(edges)
    positions = {0: (0.0, 0.75), 1: (0.0, 0.25)}
    for node in range(steps):
        positions[topology.node_state(node)] = (1.0 + node * 0.9,
                                                0.9 - 0.8 * node / max(steps - 1, 1))
    output = (2.0 + (steps - 1) * 0.9, 0.5)
    figure, axis = plt.subplots(figsize=(2.2 + 1.6 * steps, 3.6))
    for position, (op_name, source) in enumerate(edges):
        node = topology.genotype_node(position)
        _arrow(axis, positions[source], positions[topology.node_state(node)], op_name)
    for state in concat:
        _arrow(axis, positions[state], output, "")
    labels = state_labels(steps)
    for state, (x, y) in positions.items():
        _box(axis, x, y, labels[state],
             "#9ecae1" if topology.reads_cell_input(state) else "#fdd49e")
    _box(axis, *output, "c_{k}", "#a1d99b")
    axis.set_title(title, fontsize=10)
    axis.set_xlim(-0.4, output[0] + 0.4)
    axis.set_ylim(-0.05, 1.05)
    axis.axis("off")
    return figure


def _box(axis, x, y, text, color) -> None:
    axis.text(x, y, text, ha="center", va="center", fontsize=9,
              bbox={"boxstyle": "round", "facecolor": color, "edgecolor": "black"})


def _arrow(axis, start, end, label) -> None:
    axis.annotate("", xy=end, xytext=start,
                  arrowprops={"arrowstyle": "->", "color": "gray", "shrinkA": 14, "shrinkB": 14})
    if label:
        mid_x, mid_y = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
        axis.text(mid_x, mid_y, label, fontsize=6, ha="center", va="center",
                  bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 0.5})


def save_genotype_figures(genotype, directory: str | Path,
                          cache: FigureCache | None = None) -> dict[str, np.ndarray]:
    """Draw the normal and reduce cells to `<directory>/cell_{normal,reduce}.png` (through
    `cache`: only when the cell changed)."""
    cache = cache or FigureCache()
    arrays = {}
    for cell in ("normal", "reduce"):
        edges, concat = getattr(genotype, cell), getattr(genotype, f"{cell}_concat")
        arrays[cell] = cache.image(
            f"cell_{cell}", (tuple(map(tuple, edges)), tuple(concat)),
            partial(draw_cell, edges, concat, f"{cell} cell"),
            Path(directory) / f"cell_{cell}.png")
    return arrays
