"""Plots: standard curves (standards, fit, LLOQ/ULOQ, unknowns) and Levey-Jennings charts.

Matplotlib with the Agg backend; each function writes one PNG/SVG (temp file + rename).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from immunorehab.cytokines.process import PlateResult  # noqa: E402

__all__ = ["plot_levey_jennings", "plot_standard_curve", "save_figure"]


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` atomically (temp file, then rename) and close it."""
    target = Path(path)
    tmp = target.with_name(f".{target.stem}.tmp{target.suffix}")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, target)
    return target


def plot_standard_curve(result: PlateResult, analyte: str, path: str | os.PathLike[str]) -> Path:
    """Standards (used / left out), the fitted curve, LLOQ/ULOQ/LOD lines and the unknowns."""
    curve, lim = result.curves[analyte], result.limits[analyte]
    std = result.standards[result.standards["analyte"] == analyte]
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    pos = std[std["nominal"] > 0]
    used = pos[pos["used"]]
    ax.scatter(used["nominal"], used["signal"], s=22, color="black", label="standards", zorder=3)
    left = pos[~pos["used"]]
    if not left.empty:
        ax.scatter(
            left["nominal"],
            left["signal"].fillna(pos["signal"].max()),
            s=30,
            marker="x",
            color="red",
            label="left out",
            zorder=3,
        )
    if curve.ok:
        lo, hi = curve.conc_range
        grid = np.geomspace(lo / 4, hi * 4, 200)
        ax.plot(
            grid, curve.predict(grid), color="tab:blue", label=f"{curve.model} fit (R² {curve.r_squared:.4f})"
        )
        rows = result.results[
            (result.results["analyte"] == analyte) & result.results["concentration_in_well"].notna()
        ]
        ax.scatter(
            rows["concentration_in_well"],
            rows["signal"],
            s=12,
            color="tab:orange",
            alpha=0.7,
            label="unknowns",
            zorder=2,
        )
    for value, style, name in ((lim.lloq, "--", "LLOQ"), (lim.uloq, "--", "ULOQ"), (lim.lod, ":", "LOD")):
        if value == value and value > 0:
            ax.axvline(value, linestyle=style, color="grey", linewidth=1)
            ax.text(value, ax.get_ylim()[1], f" {name}", rotation=90, va="top", fontsize=8, color="grey")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"{analyte} concentration ({lim.unit})")
    ax.set_ylabel("signal")
    status = "" if curve.ok else f" — FAILED: {curve.reason}"
    ax.set_title(f"{result.plate_id}: {analyte}{status}", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, path)


def plot_levey_jennings(lj: pd.DataFrame, control: str, analyte: str, path: str | os.PathLike[str]) -> Path:
    """Levey-Jennings chart of one control/analyte: runs, mean, +-1/2/3 SD, rule violations."""
    g = lj[(lj["control"] == control) & (lj["analyte"] == analyte)].sort_values("order")
    fig, ax = plt.subplots(figsize=(7.0, 3.8))
    x = np.arange(len(g))
    mean, sd = float(g["target_mean"].iloc[0]), float(g["target_sd"].iloc[0])
    for k, colour in ((1, "#cccccc"), (2, "#f0b27a"), (3, "#e74c3c")):
        for sign in (1, -1):
            ax.axhline(mean + sign * k * sd, color=colour, linewidth=1, linestyle="--")
    ax.axhline(mean, color="black", linewidth=1)
    ax.plot(x, g["value"], marker="o", color="tab:blue")
    bad = g["reject"].to_numpy()
    ax.scatter(x[bad], g["value"].to_numpy()[bad], color="red", s=60, zorder=3, label="rejected (Westgard)")
    ax.set_xticks(x, g["plate_id"], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("control value (log10 concentration unless log=False)")
    ax.set_title(f"Levey-Jennings: {control} / {analyte}", fontsize=10)
    if bad.any():
        ax.legend(fontsize=8)
    return save_figure(fig, path)
