"""Figures for analysis results: forest plot of contrasts, Kaplan-Meier curves, power curves.

matplotlib with the Agg backend; files are written to a temporary file and moved into place,
and an existing file is only replaced with ``overwrite=True``. Sizes and fonts are chosen to
stay readable when printed on A4.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from immunorehab.analysis._validation import require_columns  # noqa: E402
from immunorehab.analysis.results import KaplanMeierResult  # noqa: E402
from immunorehab.errors import AnalysisDataError  # noqa: E402

__all__ = ["forest_plot", "km_plot", "power_curve", "save_figure"]

_FORMATS = {".png", ".svg", ".pdf"}


def save_figure(
    fig: Figure, path: str | os.PathLike[str], *, overwrite: bool = False, dpi: int = 200
) -> Path:
    """Write ``fig`` atomically to ``path`` (PNG, SVG or PDF) and close it."""
    target = Path(path)
    if target.suffix.lower() not in _FORMATS:
        plt.close(fig)
        raise AnalysisDataError(
            f"figure path {str(target)!r} must end in one of {', '.join(sorted(_FORMATS))}."
        )
    if target.exists() and not overwrite:
        plt.close(fig)
        raise AnalysisDataError(f"{str(target)!r} exists; pass overwrite=True to replace it.")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, target)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def forest_plot(
    table: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    label: str = "contrast",
    ratio: bool = False,
    title: str = "",
    xlabel: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Forest plot of estimates with CIs, one row per line of ``table``.

    Parameters
    ----------
    table : DataFrame
        Needs ``label``, ``estimate``, ``ci_low``, ``ci_high`` (e.g. :attr:`AncovaResult.table`
        concatenated over immune subsets, with a label column naming the subset).
    path : path-like
        Output file (.png, .svg or .pdf).
    ratio : bool
        Estimates are ratios: log x-axis and reference line at 1 (else at 0).
    """
    require_columns(table, (label, "estimate", "ci_low", "ci_high"), context="forest_plot")
    if table.empty:
        raise AnalysisDataError("forest_plot: the table has no rows.")
    n = len(table)
    fig, ax = plt.subplots(figsize=(7.0, 1.2 + 0.38 * n))
    ypos = np.arange(n)[::-1]
    est = table["estimate"].to_numpy(float)
    lo, hi = table["ci_low"].to_numpy(float), table["ci_high"].to_numpy(float)
    ax.errorbar(
        est, ypos, xerr=[est - lo, hi - est], fmt="s", color="black", ecolor="black", capsize=3, markersize=5
    )
    ax.axvline(1.0 if ratio else 0.0, color="grey", linestyle="--", linewidth=1)
    if ratio:
        ax.set_xscale("log")
    ax.set_yticks(ypos, [str(v) for v in table[label]])
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel(xlabel or ("Ratio (95% CI)" if ratio else "Difference (95% CI)"), fontsize=11)
    ax.tick_params(labelsize=10)
    if title:
        ax.set_title(title, fontsize=12)
    ax.grid(axis="x", color="0.9")
    return save_figure(fig, path, overwrite=overwrite)


def km_plot(
    result: KaplanMeierResult,
    path: str | os.PathLike[str],
    *,
    title: str = "",
    xlabel: str | None = None,
    ylabel: str = "Proportion without event",
    show_ci: bool = True,
    overwrite: bool = False,
) -> Path:
    """Step plot of the Kaplan-Meier curves (with pointwise CI bands) of a result."""
    fig, ax = plt.subplots(figsize=(7.0, 4.5))
    for grp, part in result.table.groupby("group", sort=False):
        t = np.r_[0.0, part["time"].to_numpy(float)]
        s = np.r_[1.0, part["survival"].to_numpy(float)]
        (line,) = ax.step(t, s, where="post", label=str(grp), linewidth=1.8)
        if show_ci:
            lo = np.r_[1.0, part["ci_low"].to_numpy(float)]
            hi = np.r_[1.0, part["ci_high"].to_numpy(float)]
            ax.fill_between(t, lo, hi, step="post", alpha=0.15, color=line.get_color(), linewidth=0)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.set_xlabel(xlabel or result.time, fontsize=11)
    ax.set_ylabel(ylabel, fontsize=11)
    if result.group is not None:
        ax.legend(title=result.group, fontsize=10)
    if title:
        ax.set_title(title, fontsize=12)
    ax.grid(color="0.9")
    return save_figure(fig, path, overwrite=overwrite)


def power_curve(
    table: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    title: str = "",
    targets: tuple[float, ...] = (0.8, 0.9),
    overwrite: bool = False,
) -> Path:
    """Simulated power by sample size per arm, with the Monte-Carlo (Wilson) 95% CI of each point.

    ``table`` is :attr:`SimulatedPowerResult.table` (``n_per_arm, power, power_ci_low,
    power_ci_high``); dashed lines mark the ``targets`` (80% and 90% by default).
    """
    require_columns(table, ("n_per_arm", "power", "power_ci_low", "power_ci_high"), context="power_curve")
    if table.empty:
        raise AnalysisDataError("power_curve: the table has no rows.")
    frame = table.sort_values("n_per_arm")
    n = frame["n_per_arm"].to_numpy(float)
    power = frame["power"].to_numpy(float)
    lo, hi = frame["power_ci_low"].to_numpy(float), frame["power_ci_high"].to_numpy(float)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.errorbar(n, power, yerr=[power - lo, hi - power], fmt="o-", color="black", capsize=3, markersize=5)
    for target in targets:
        ax.axhline(target, color="grey", linestyle="--", linewidth=1)
        ax.annotate(f"{target:.0%}", (n.max(), target), xytext=(4, 2), textcoords="offset points", fontsize=9)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("Participants per arm", fontsize=11)
    ax.set_ylabel("Power (simulated, 95% CI)", fontsize=11)
    ax.tick_params(labelsize=10)
    if title:
        ax.set_title(title, fontsize=12)
    ax.grid(color="0.9")
    return save_figure(fig, path, overwrite=overwrite)
