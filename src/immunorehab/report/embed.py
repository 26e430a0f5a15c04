"""Figures embedded in the report: matplotlib (Agg) figures saved as SVG, base64 data URIs.

SVG keeps figures sharp when printed; text stays text (``svg.fonttype = none``) so the PDF
can be searched and the blinding checks can read figure labels. Output is deterministic
(fixed hash salt, no date), so the same study gives byte-identical figures.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["EmbeddedFigure", "PRINT_STYLE", "embed", "print_style"]

#: rcParams for figures read on paper: 9-10 pt text at A4 width, black text and axes, SVG text.
PRINT_STYLE: dict[str, object] = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "legend.fontsize": 8.5,
    "axes.edgecolor": "black",
    "axes.linewidth": 0.8,
    "lines.linewidth": 1.6,
    "svg.fonttype": "none",
    "svg.hashsalt": "immunorehab-report",
}


@contextmanager
def print_style() -> Iterator[None]:
    """The print style as a matplotlib rc context."""
    with matplotlib.rc_context(PRINT_STYLE):  # type: ignore[arg-type]
        yield


@dataclass(frozen=True, slots=True)
class EmbeddedFigure:
    """A figure ready for the HTML: ``data_uri`` holds the whole SVG (base64)."""

    key: str
    title: str
    caption: str
    svg: str

    @property
    def data_uri(self) -> str:
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg.encode("utf-8")).decode("ascii")


def embed(fig: Figure, *, key: str, title: str, caption: str) -> EmbeddedFigure:
    """Save ``fig`` as SVG (then close it) and wrap it for the report."""
    buffer = io.StringIO()
    try:
        with print_style():
            fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    finally:
        plt.close(fig)
    return EmbeddedFigure(key, title, caption, buffer.getvalue())
