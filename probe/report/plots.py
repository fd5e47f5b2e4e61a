"""Charts for the HTML report, drawn with matplotlib and returned as inline SVG text.

No pyplot and no global state: each chart is its own ``Figure`` rendered by the SVG
backend, with text kept as text (searchable, and checked by the browser test) and a
fixed id salt and no date, so the same figures give the same SVG.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from probe.extras import require

require("report", "the HTML report's charts")  # one line, not a traceback, without matplotlib

# Colors shared with the page's CSS (html.py): base, candidate, missing.
BASE_COLOR = "#4c72b0"
CANDIDATE_COLOR = "#dd8452"
MISSING_COLOR = "#e6e6e6"


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=96, layout="constrained")


def _svg(fig: Any) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "probe-report",
                                "font.family": "sans-serif"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    # Drop the XML prolog and DOCTYPE: the SVG is embedded in an HTML page.
    return text[text.index("<svg"):]


def heatmap(rows: Sequence[str], columns: Sequence[str],
            values: Sequence[Sequence[float | None]], links: Sequence[str],
            title: str) -> str:
    """A rows x columns grid of rates in [0, 1]; ``None`` cells are grey ("n/a").

    ``links[i]`` is the page anchor each cell of row ``i`` links to.
    """
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    fig = _figure(1.6 + 1.15 * len(columns), 1.1 + 0.42 * len(rows))
    ax = fig.add_subplot()
    cmap, norm = colormaps["Reds"], Normalize(0.0, 1.0)
    for i, (row_values, link) in enumerate(zip(values, links, strict=True)):
        for j, value in enumerate(row_values):
            color = MISSING_COLOR if value is None else cmap(norm(value))
            cell = Rectangle((j, i), 1, 1, facecolor=color, edgecolor="white", linewidth=1.5)
            cell.set_url(link)  # the SVG backend wraps the cell in a link
            ax.add_patch(cell)
            label = "n/a" if value is None else f"{value:.2f}"
            dark = value is not None and value > 0.55
            ax.text(j + 0.5, i + 0.5, label, ha="center", va="center", fontsize=9,
                    color="white" if dark else "black")
    ax.set_xlim(0, len(columns))
    ax.set_ylim(len(rows), 0)
    ax.set_xticks([j + 0.5 for j in range(len(columns))], list(columns), rotation=30,
                  ha="right")
    ax.set_yticks([i + 0.5 for i in range(len(rows))], list(rows))
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title, fontsize=10)
    fig.colorbar(_scalar_mappable(cmap, norm), ax=ax, fraction=0.05, pad=0.02)
    return _svg(fig)


def _scalar_mappable(cmap: Any, norm: Any) -> Any:
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=norm, cmap=cmap)


# The per-operator chart is drawn at its final size, never scaled down by the page:
# at most this wide (inches; 96 dpi, so it fits the report's 1200 px column), with a
# fixed band per operator, so the labels stay readable at 3 operators and at 40.
BARS_WIDTH = 7.5
BAND_HEIGHT = 0.34
LABEL_POINTS = 9


def paired_bars(labels: Sequence[str], base: Sequence[float | None],
                candidate: Sequence[float | None], title: str, xlabel: str) -> str:
    """Base and candidate side by side for each label, as horizontal bars: one band per
    label, labels horizontal on the left (a missing value draws no bar)."""
    fig = _figure(BARS_WIDTH, max(2.2, 1.3 + BAND_HEIGHT * len(labels)))
    ax = fig.add_subplot()
    height = 0.4
    for offset, series, color, name in ((-height / 2, base, BASE_COLOR, "base"),
                                        (height / 2, candidate, CANDIDATE_COLOR, "candidate")):
        ys = [i + offset for i, v in enumerate(series) if v is not None]
        xs = [v for v in series if v is not None]
        bars = ax.barh(ys, xs, height, color=color, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=LABEL_POINTS - 2, padding=2)
    ax.set_yticks(range(len(labels)), list(labels), fontsize=LABEL_POINTS)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # the first label on top, as in the table below
    ax.set_xlim(0, 1.15)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8, frameon=False, ncols=2,
              bbox_to_anchor=(1.0, 1.0))
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def layer_profile(layers: Sequence[int], base: Sequence[float | None],
                  candidate: Sequence[float | None], first: int, title: str) -> str:
    """Both models' margin per layer as two lines, with zero and the first layer the latent
    shadow reads (``first``) marked; a missing value breaks its line."""
    fig = _figure(BARS_WIDTH, 3.0)
    ax = fig.add_subplot()
    for series, color, name in ((base, BASE_COLOR, "base"),
                                (candidate, CANDIDATE_COLOR, "candidate")):
        ys = [float("nan") if v is None else v for v in series]
        ax.plot(list(layers), ys, color=color, marker="o", markersize=3, label=name)
    ax.axhline(0.0, color="#888888", linewidth=0.8)
    ax.axvline(first, color="#888888", linewidth=0.8, linestyle="--")
    ax.set_xlabel("layer (logit lens)")
    ax.set_ylabel("margin")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="best", fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)
