"""Report figures print legibly: grey only, text of at least 8 pt, a distinct marker and dash per group."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from report_helpers import DESCRIPTIVE_COLUMNS

from immunorehab.report.embed import embed
from immunorehab.report.figures import (
    forest_figure,
    km_figure,
    marker_panels,
    prevalence_figure,
    style_for,
    trajectory_panels,
)

GROUPS = [("a", "Arm A"), ("b", "Arm B"), ("c", "Arm C")]


def _desc() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for outcome in ("cd8_naive", "il6"):
        for visit in ("baseline", "week8", "month24"):
            for arm, _ in GROUPS:
                med = float(rng.uniform(10, 30))
                rows.append([outcome, visit, arm, 10, med, 2.0, med, med - 3, med + 3, med * 0.97])
    return pd.DataFrame(rows, columns=DESCRIPTIVE_COLUMNS)


def _colours(svg: str) -> set[str]:
    return set(re.findall(r"#[0-9a-fA-F]{6}\b", svg))


def _font_sizes(svg: str) -> list[float]:
    return [float(x) for x in re.findall(r"font[^;\"]*?([0-9.]+)px", svg)]


def _check_print(svg: str) -> None:
    for colour in _colours(svg):
        r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
        assert r == g == b, f"colour {colour} is not grey"
    sizes = _font_sizes(svg)
    assert sizes and min(sizes) >= 8.0, sizes


def test_styles_differ_in_marker_and_dash() -> None:
    styles = [style_for(i) for i in range(6)]
    assert len({s.marker for s in styles}) == 6
    assert len({str(s.linestyle) for s in styles}) == 6


def test_marker_and_trajectory_panels() -> None:
    desc = _desc()
    fig = marker_panels(
        desc,
        outcomes=[("cd8_naive", "Naive CD8+")],
        visits=[("baseline", "baseline"), ("week8", "week8"), ("month12", "month12")],
        groups=GROUPS,
    )
    svg = embed(fig, key="m", title="", caption="").svg
    _check_print(svg)
    assert "Naive CD8+" in svg and "Arm C" in svg
    assert "month12" not in svg  # no data at that visit: left off the axis
    fig = trajectory_panels(
        desc,
        outcomes=[("il6", "IL-6")],
        visit_days={"baseline": 0, "week8": 56, "month24": 730},
        groups=GROUPS,
    )
    svg = embed(fig, key="t", title="", caption="").svg
    _check_print(svg)
    assert "months" in svg and "IL-6" in svg


def test_forest_plot_writes_the_estimates() -> None:
    table = pd.DataFrame(
        {
            "label": ["Naive CD8+", "TEMRA CD8+"],
            "estimate": [1.16, 0.92],
            "ci_low": [1.01, 0.8],
            "ci_high": [1.33, 1.06],
        }
    )
    svg = embed(forest_figure(table, ratio=True), key="f", title="", caption="").svg
    _check_print(svg)
    assert "1.16 (1.01 to 1.33)" in svg and "0.92 (0.80 to 1.06)" in svg
    ticks = re.findall(r">([0-9.]+)</text>", svg)
    assert "1" in ticks


def test_km_and_prevalence_figures() -> None:
    km = pd.DataFrame(
        {
            "group": ["sym", "sym", "asym", "asym"],
            "time": [6.0, 12.0, 6.0, 24.0],
            "survival": [0.8, 0.5, 0.6, 0.2],
            "ci_low": [0.6, 0.3, 0.4, 0.05],
            "ci_high": [0.95, 0.7, 0.8, 0.45],
        }
    )
    svg = embed(
        km_figure(km, title="IL-6", time_label="months", group_label=str), key="k", title="", caption=""
    ).svg
    _check_print(svg)
    assert "sym" in svg and "Proportion not yet normal" in svg
    prev = pd.DataFrame(
        {
            "visit": ["m12", "m24"],
            "group": ["all", "all"],
            "n": [78, 70],
            "events": [29, 27],
            "proportion": [29 / 78, 27 / 70],
            "ci_low": [0.27, 0.28],
            "ci_high": [0.48, 0.50],
        }
    )
    fig = prevalence_figure(
        prev, title="Symptoms", visits=[("m12", "12 months"), ("m24", "24 months")], group_label=str
    )
    svg = embed(fig, key="p", title="", caption="").svg
    _check_print(svg)
    assert "12 months" in svg


def test_figures_are_deterministic() -> None:
    desc = _desc()

    def draw() -> str:
        fig = marker_panels(desc, outcomes=[("cd8_naive", "x")], visits=[("baseline", "b")], groups=GROUPS)
        return embed(fig, key="m", title="", caption="").svg

    assert draw() == draw()
