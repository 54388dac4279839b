"""A training report's pictures, as small PNGs. matplotlib lives in the train image only.

Figures are drawn on their own Agg canvas, without pyplot: no display, and no global figure state shared
between threads (the local server trains on several threads at once).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from deployment_model.ml.training import TrainedModel

WIDTH_PX, HEIGHT_PX, DPI = 480, 400, 80  # every picture is exactly this size (tests decode and check it)
REGION_GRID_POINTS = 200  # per axis: smooth enough edges, and a 40,000-row predict takes milliseconds
MAX_POINTS_DRAWN = 1_500  # past this, a random sample: the picture stays small and quick to draw


def _figure() -> Figure:
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, pil_kwargs={"optimize": True})
    return buffer.getvalue()


def _class_colours(n_classes: int) -> ListedColormap:
    """One distinct colour per class: tab10's first n, or evenly spaced viridis beyond ten classes."""
    if n_classes <= 10:
        return ListedColormap([colormaps["tab10"](i) for i in range(n_classes)])
    viridis = colormaps["viridis"]
    return ListedColormap([viridis(i / (n_classes - 1)) for i in range(n_classes)])


def confusion_matrix_png(matrix: list[list[int]], labels: list[str]) -> bytes:
    """The held-out confusion matrix as a heat map, each cell labelled with its count."""
    counts = np.asarray(matrix)
    figure = _figure()
    axes = figure.add_subplot()
    image = axes.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=axes, shrink=0.8)
    ticks = range(len(labels))
    axes.set_xticks(
        ticks, labels=labels, rotation=30 if len(labels) > 3 else 0, ha="right" if len(labels) > 3 else "center"
    )
    axes.set_yticks(ticks, labels=labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("Confusion matrix (held-out split)")
    threshold = counts.max() / 2 if counts.size else 0
    if len(labels) <= 20:  # past that the numbers would not fit; the colours still tell
        for (row, column), value in np.ndenumerate(counts):
            colour = "white" if value > threshold else "black"
            axes.text(column, row, str(value), ha="center", va="center", color=colour)
    figure.tight_layout()
    return _png(figure)


def decision_regions_png(trained: TrainedModel) -> bytes | None:
    """For a two-feature model: the class each point of the plane gets, with the training points on top."""
    if len(trained.feature_names) != 2 or trained.split is None:
        return None
    x_train, y_train = trained.split.x_train, trained.split.y_train
    low, high = x_train.min(axis=0), x_train.max(axis=0)
    margin = np.where(high > low, (high - low) * 0.1, 1.0)
    axis_0 = np.linspace(low[0] - margin[0], high[0] + margin[0], REGION_GRID_POINTS)
    axis_1 = np.linspace(low[1] - margin[1], high[1] + margin[1], REGION_GRID_POINTS)
    grid_0, grid_1 = np.meshgrid(axis_0, axis_1)
    plane = np.column_stack([grid_0.ravel(), grid_1.ravel()])
    regions = trained.model.predict(trained.scaler.transform(plane)).reshape(grid_0.shape)
    n_classes = len(trained.labels)
    colours = _class_colours(n_classes)
    title = f"Decision regions: {trained.estimator}"
    if len(y_train) > MAX_POINTS_DRAWN:
        drawn = np.random.default_rng(0).choice(len(y_train), MAX_POINTS_DRAWN, replace=False)
        title += f"\n({MAX_POINTS_DRAWN:,} of {len(y_train):,} training points drawn)"
        x_train, y_train = x_train[drawn], y_train[drawn]
    figure = _figure()
    axes = figure.add_subplot()
    axes.contourf(grid_0, grid_1, regions, levels=np.arange(-0.5, n_classes), cmap=colours, alpha=0.3)
    for index, label in enumerate(trained.labels):
        points = x_train[y_train == index]
        axes.scatter(
            points[:, 0], points[:, 1], s=14, color=colours(index), edgecolors="black", linewidths=0.4, label=label
        )
    axes.set_xlabel(trained.feature_names[0])
    axes.set_ylabel(trained.feature_names[1])
    axes.set_title(title)
    axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    return _png(figure)
