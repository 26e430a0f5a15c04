"""Report figures drawn from the study analysis' tidy tables (nothing is re-estimated).

* forest plots of the immune-subset contrasts (:func:`immunorehab.analysis.forest_plot`);
* per-marker small multiples by group and visit (median with interquartile range);
* cytokine trajectories to 24 months (geometric means on a log axis, by arm or symptom group);
* Kaplan-Meier curves of time to normalisation and prevalence per visit (cohorts).

Every group has its own marker, line style and grey level, so figures stay readable in
black-and-white print; text is 8.5-10 pt at A4 width.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator  # noqa: E402

from immunorehab.report.embed import print_style  # noqa: E402

__all__ = [
    "GroupStyle",
    "forest_figure",
    "km_figure",
    "marker_panels",
    "prevalence_figure",
    "style_for",
    "trajectory_panels",
]

DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True, slots=True)
class GroupStyle:
    marker: str
    linestyle: str | tuple[int, tuple[int, ...]]
    color: str


_STYLES = (
    GroupStyle("o", "-", "black"),
    GroupStyle("s", "--", "0.40"),
    GroupStyle("^", ":", "0.25"),
    GroupStyle("D", "-.", "0.55"),
    GroupStyle("v", (0, (6, 2, 1, 2, 1, 2)), "0.15"),
    GroupStyle("P", (0, (2, 1)), "0.5"),
)


def style_for(index: int) -> GroupStyle:
    """The greyscale-safe style of the ``index``-th group."""
    return _STYLES[index % len(_STYLES)]


def _grid(n: int, ncols: int, panel_h: float) -> tuple[Figure, list[Axes]]:
    rows = max(1, math.ceil(n / ncols))
    with print_style():
        fig, axes = plt.subplots(rows, ncols, figsize=(7.0, 0.9 + panel_h * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _legend(fig: Figure, axes: Sequence[Axes], groups: Sequence[tuple[str, str]]) -> None:
    handles, labels = axes[0].get_legend_handles_labels() if axes else ([], [])
    if len(groups) > 1 and handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(3, len(groups)), frameon=False, fontsize=8.5)
        fig.tight_layout(rect=(0, 0.06 + 0.025 * (len(groups) > 3), 1, 1))
    else:
        fig.tight_layout()


def marker_panels(
    descriptives: pd.DataFrame,
    *,
    outcomes: Sequence[tuple[str, str]],
    visits: Sequence[tuple[str, str]],
    groups: Sequence[tuple[str, str]],
) -> Figure:
    """Small multiples, one per outcome: median and IQR per group (dodged) at each visit.

    ``outcomes``/``visits``/``groups`` are ``(key, label)`` pairs; ``groups`` keys match the
    descriptives' ``arm`` column.
    """
    present = set(descriptives.loc[descriptives["outcome"].isin([o for o, _ in outcomes]), "visit"])
    visits = [(v, label) for v, label in visits if v in present]
    fig, axes = _grid(len(outcomes), 2, 2.15)
    width = 0.5 / max(1, len(groups))
    for ax, (outcome, label) in zip(axes, outcomes, strict=True):
        part = descriptives[descriptives["outcome"] == outcome]
        for g, (key, glabel) in enumerate(groups):
            mine = part[part["arm"] == key].drop_duplicates("visit").set_index("visit")
            mine = mine.reindex([v for v, _ in visits])
            med = mine["median"].to_numpy(float)
            keep = np.isfinite(med)
            if not keep.any():
                continue
            xs = (np.arange(len(visits)) + (g - (len(groups) - 1) / 2) * width)[keep]
            lo, hi = mine["q1"].to_numpy(float)[keep], mine["q3"].to_numpy(float)[keep]
            st = style_for(g)
            m = med[keep]
            ax.errorbar(
                xs,
                m,
                yerr=[m - lo, hi - m],
                marker=st.marker,
                linestyle=st.linestyle,
                color=st.color,
                capsize=2.5,
                markersize=4.5,
                linewidth=1.2,
                label=glabel,
            )
        ax.set_title(label, fontsize=9)
        ax.set_xticks(range(len(visits)), [v for _, v in visits], fontsize=8, rotation=30, ha="right")
        ax.set_xlim(-0.5, len(visits) - 0.5)
        ax.grid(axis="y", color="0.9")
    _legend(fig, axes, groups)
    return fig


def trajectory_panels(
    descriptives: pd.DataFrame,
    *,
    outcomes: Sequence[tuple[str, str]],
    visit_days: Mapping[str, int],
    groups: Sequence[tuple[str, str]],
) -> Figure:
    """Geometric mean of each outcome against months since day 0, one line per group, log y axis."""
    fig, axes = _grid(len(outcomes), 3, 2.0)
    for ax, (outcome, label) in zip(axes, outcomes, strict=True):
        part = descriptives[
            (descriptives["outcome"] == outcome) & descriptives["visit"].isin(list(visit_days))
        ]
        for g, (key, glabel) in enumerate(groups):
            mine = part[(part["arm"] == key) & part["geo_mean"].notna()]
            if mine.empty:
                continue
            months = mine["visit"].map(visit_days).astype(float) / DAYS_PER_MONTH
            order = np.argsort(months.to_numpy())
            st = style_for(g)
            ax.plot(
                months.to_numpy()[order],
                mine["geo_mean"].to_numpy(float)[order],
                marker=st.marker,
                linestyle=st.linestyle,
                color=st.color,
                markersize=4.5,
                linewidth=1.3,
                label=glabel,
            )
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("months", fontsize=8.5)
        ax.set_xlim(left=-0.5)
        ax.grid(color="0.9")
    _legend(fig, axes, groups)
    return fig


_RATIO_TICKS = (0.1, 0.2, 0.25, 0.33, 0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 10.0)


def _ratio_ticks(ax: Axes, low: float, high: float) -> None:
    """Plain-number ticks on a log axis, at least 1/7 of the axis apart (1 always shown)."""
    gap = (math.log10(high) - math.log10(low)) / 7
    ticks: list[float] = []
    for v in sorted(v for v in _RATIO_TICKS if low <= v <= high):
        if v == 1.0 or not ticks or math.log10(v) - math.log10(ticks[-1]) >= gap:
            if ticks and v == 1.0 and math.log10(v) - math.log10(ticks[-1]) < gap:
                ticks.pop()
            ticks.append(v)
    ticks = ticks or [1.0]
    ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
    ax.xaxis.set_minor_locator(NullLocator())


def forest_figure(table: pd.DataFrame, *, ratio: bool) -> Figure:
    """Forest plot of ``label, estimate, ci_low, ci_high`` rows with the estimates written out.

    Squares and black CI lines, a dashed line of no effect (1 for ratios on a log axis, else
    0) and plain tick labels, so it prints legibly in black and white.
    """
    n = len(table)
    with print_style():
        fig, (ax, txt) = plt.subplots(
            1, 2, figsize=(7.0, 0.9 + 0.3 * n), gridspec_kw={"width_ratios": [3.1, 1.5], "wspace": 0.02}
        )
    y = np.arange(n)[::-1]
    est = table["estimate"].to_numpy(float)
    lo, hi = table["ci_low"].to_numpy(float), table["ci_high"].to_numpy(float)
    ax.hlines(y, lo, hi, color="black", linewidth=1.2)
    ax.plot(est, y, "s", color="black", markersize=5)
    ax.axvline(1.0 if ratio else 0.0, color="0.3", linestyle="--", linewidth=0.9)
    if ratio:
        ax.set_xscale("log")
        span = np.r_[lo, hi, 1.0]
        span = span[np.isfinite(span) & (span > 0)]
        low, high = float(span.min()) / 1.05, float(span.max()) * 1.05
        ax.set_xlim(low, high)
        _ratio_ticks(ax, low, high)
    ax.set_yticks(y, [str(v) for v in table["label"]])
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel("Geometric-mean ratio (95% CI), log scale" if ratio else "Adjusted difference (95% CI)")
    ax.grid(axis="x", color="0.9")
    txt.set_ylim(ax.get_ylim())
    txt.axis("off")
    for yy, e, a, b in zip(y, est, lo, hi, strict=True):
        txt.text(0.02, yy, _ci_text(e, a, b, ratio), va="center", fontsize=8.5)
    txt.text(0.02, n - 0.35, "GMR (95% CI)" if ratio else "Difference (95% CI)", fontsize=8.5, weight="bold")
    fig.subplots_adjust(
        left=0.33, right=0.99, bottom=0.9 / (0.9 + 0.3 * n) * 0.75, top=1 - 0.35 / (0.9 + 0.3 * n)
    )
    return fig


def _ci_text(estimate: float, low: float, high: float, ratio: bool) -> str:
    from immunorehab.report.outcomes import fmt_estimate

    return fmt_estimate(estimate, low, high, ratio=ratio)


def km_figure(
    table: pd.DataFrame, *, title: str, time_label: str, group_label: Callable[[str], str]
) -> Figure:
    """Kaplan-Meier step curves (proportion not yet normal) with pointwise CIs as thin lines.

    ``table`` has ``group, time, survival, ci_low, ci_high`` (as
    :attr:`immunorehab.analysis.KaplanMeierResult.table`).
    """
    with print_style():
        fig, ax = plt.subplots(figsize=(6.2, 3.6))
    for g, (grp, part) in enumerate(table.groupby("group", sort=False)):
        st = style_for(g)
        t = np.r_[0.0, part["time"].to_numpy(float)]
        s = np.r_[1.0, part["survival"].to_numpy(float)]
        ax.step(
            t,
            s,
            where="post",
            linestyle=st.linestyle,
            color=st.color,
            linewidth=1.6,
            label=group_label(str(grp)),
        )
        for col in ("ci_low", "ci_high"):
            band = np.r_[1.0, part[col].to_numpy(float)]
            ax.step(t, band, where="post", linestyle=":", color=st.color, linewidth=0.7)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.set_xlabel(time_label)
    ax.set_ylabel("Proportion not yet normal")
    ax.set_title(title, fontsize=10)
    ax.legend(frameon=False)
    ax.grid(color="0.9")
    fig.tight_layout()
    return fig


def prevalence_figure(
    table: pd.DataFrame, *, title: str, visits: Sequence[tuple[str, str]], group_label: Callable[[str], str]
) -> Figure:
    """Proportion with the condition per visit with Wilson 95% CIs, one series per group.

    ``table`` has ``visit, group, n, events, proportion, ci_low, ci_high``.
    """
    with print_style():
        fig, ax = plt.subplots(figsize=(6.2, 3.4))
    groups = list(dict.fromkeys(table["group"].astype(str)))
    width = 0.4 / max(1, len(groups))
    order = {v: i for i, (v, _) in enumerate(visits)}
    for g, grp in enumerate(groups):
        part = table[(table["group"].astype(str) == grp) & table["visit"].isin(list(order))]
        x = part["visit"].map(order).to_numpy(float) + (g - (len(groups) - 1) / 2) * width
        p = part["proportion"].to_numpy(float)
        st = style_for(g)
        ax.errorbar(
            x,
            p,
            yerr=[p - part["ci_low"].to_numpy(float), part["ci_high"].to_numpy(float) - p],
            marker=st.marker,
            linestyle=st.linestyle,
            color=st.color,
            capsize=3,
            label=group_label(grp),
        )
    ax.set_xticks(range(len(visits)), [label for _, label in visits])
    ax.set_ylim(0, 1)
    ax.set_ylabel("Proportion (Wilson 95% CI)")
    ax.set_title(title, fontsize=10)
    if len(groups) > 1:
        ax.legend(frameon=False)
    ax.grid(axis="y", color="0.9")
    fig.tight_layout()
    return fig
