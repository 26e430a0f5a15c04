"""Outcome tables rendered from the study analysis (pure; nothing is recomputed).

:func:`outcome_table` lays out ``StudyAnalysis.results`` (one row per outcome, population and
contrast: estimate, CI, raw and adjusted p) grouped by role and family;
:func:`baseline_outcome_rows` and :func:`descriptives_table` lay out
``StudyAnalysis.descriptives`` (``outcome, visit, arm, n, mean, sd, median, q1, q3,
geo_mean``). Numbers are formatted, never changed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence

import pandas as pd

from immunorehab.report.tables import Group, Table, TableRow, fmt_num

__all__ = [
    "RESULT_COLUMNS",
    "DESCRIPTIVE_COLUMNS",
    "arm_labeller",
    "baseline_outcome_rows",
    "descriptives_table",
    "estimate_decimals",
    "fmt_estimate",
    "fmt_p",
    "outcome_decimals",
    "outcome_table",
    "significant_digits",
]

RESULT_COLUMNS = (
    "outcome",
    "label",
    "source",
    "family",
    "role",
    "population",
    "model",
    "scale",
    "contrast",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "adjust_method",
    "n",
    "n_missing",
)
DESCRIPTIVE_COLUMNS = ("outcome", "visit", "arm", "n", "mean", "sd", "median", "q1", "q3", "geo_mean")
ROLE_ORDER = ("primary", "secondary", "exploratory")
ROLE_TITLES = {
    "primary": "Primary outcome",
    "secondary": "Secondary outcomes",
    "exploratory": "Exploratory outcomes",
}
POPULATIONS = {"itt": "ITT", "per_protocol": "Per protocol", "completers": "Completers", "all": "All"}


def significant_digits(value: float, sig: int = 3) -> int:
    """Decimals that show ``value`` to about ``sig`` significant digits (0 to 4)."""
    if value == 0 or not math.isfinite(value):
        return 2
    return max(0, min(4, sig - 1 - int(math.floor(math.log10(abs(value))))))


def estimate_decimals(estimate: float, low: float, high: float) -> int:
    """Decimals for a difference and its CI: about 3 significant digits of the CI width."""
    width = max(abs(high - low), abs(estimate), 1e-12)
    return significant_digits(width, 2) if width < 1 else significant_digits(width, 3)


def fmt_estimate(
    estimate: float, low: float, high: float, *, ratio: bool, decimals: int | None = None
) -> str:
    """``estimate (low to high)``; differences signed, ratios to 2 decimals.

    ``decimals`` fixes the decimals of a difference (a table passes one value per outcome so
    that its ITT and per-protocol rows read alike); by default they follow the CI width.
    """
    if not all(math.isfinite(v) for v in (estimate, low, high)):
        return "–"
    if ratio:
        return f"{estimate:.2f} ({low:.2f} to {high:.2f})"
    d = estimate_decimals(estimate, low, high) if decimals is None else decimals
    return f"{estimate:+.{d}f} ({low:.{d}f} to {high:.{d}f})"


def outcome_decimals(results: pd.DataFrame) -> dict[str, int]:
    """One number of decimals per outcome: the most any of its rows needs (finite ones)."""
    out: dict[str, int] = {}
    for _, r in results.iterrows():
        values = (float(r["estimate"]), float(r["ci_low"]), float(r["ci_high"]))
        if not all(math.isfinite(v) for v in values):
            continue
        key = str(r["outcome"])
        out[key] = max(out.get(key, 0), estimate_decimals(*values))
    return out


def fmt_p(p: float | None) -> str:
    """P-values as journals print them: ``<0.001``, three decimals below 0.1, else two."""
    if p is None or not math.isfinite(float(p)):
        return "–"
    p = float(p)
    if p < 0.001:
        return "<0.001"
    if p < 0.1:
        return f"{p:.3f}"
    return f"{p:.2f}"


def arm_labeller(labels: Mapping[str, str]) -> Callable[[str], str]:
    """Replace arm ids in a contrast text (``face_to_face vs usual_care``) by their labels."""
    if not labels:
        return lambda text: text
    pattern = re.compile(
        r"\b(" + "|".join(re.escape(k) for k in sorted(labels, key=len, reverse=True)) + r")\b"
    )
    return lambda text: pattern.sub(lambda m: labels[m.group(1)], str(text))


def _n_cell(row: pd.Series) -> str:
    n = row.get("n")
    missing = row.get("n_missing")
    if n is None or pd.isna(n):
        return "–"
    text = str(int(n))
    if missing is not None and not pd.isna(missing) and int(missing):
        text += f" ({int(missing)} missing)"
    return text


def _family_title(family: object, method: object, family_labels: Mapping[str, str]) -> str:
    if family is None or (isinstance(family, float) and math.isnan(family)) or family == "":
        return "No multiplicity family"
    name = family_labels.get(str(family), str(family))
    adjust = (
        ""
        if method is None or (isinstance(method, float) and math.isnan(method))
        else f" (adjusted: {method})"
    )
    return f"{name}{adjust}"


def _result_cells(r: pd.Series, decimals: int | None = None) -> tuple[str, ...]:
    ratio = r["scale"] == "ratio"
    estimate = fmt_estimate(
        float(r["estimate"]), float(r["ci_low"]), float(r["ci_high"]), ratio=ratio, decimals=decimals
    )
    return (
        POPULATIONS.get(str(r["population"]), str(r["population"])),
        _n_cell(r),
        ("GMR " if ratio else "") + estimate,
        fmt_p(r["p_value"]),
        fmt_p(r["p_adjusted"]),
    )


def outcome_table(
    results: pd.DataFrame,
    *,
    contrast_label: Callable[[str], str],
    family_labels: Mapping[str, str] | None = None,
) -> Table:
    """The outcome table: by role, family and contrast; one row per outcome and population.

    Columns: population, n (missing), estimate (95% CI) — an adjusted mean difference, or a
    geometric-mean ratio when ``scale == "ratio"`` — p and adjusted p.
    """
    fams = family_labels or {}
    rows: list[TableRow] = []
    blank = ("",) * 5
    frame = results.copy()
    decimals = outcome_decimals(frame)
    frame["_role"] = frame["role"].map({r: i for i, r in enumerate(ROLE_ORDER)}).fillna(len(ROLE_ORDER))
    for role in sorted(frame["_role"].unique()):
        part = frame[frame["_role"] == role]
        title = ROLE_TITLES.get(str(part["role"].iloc[0]), str(part["role"].iloc[0]).capitalize())
        rows.append(TableRow(title, blank, heading=True))
        for family, fam_part in part.groupby(part["family"].fillna(""), sort=False):
            method = fam_part["adjust_method"].dropna()
            head = _family_title(family, method.iloc[0] if len(method) else None, fams)
            rows.append(TableRow(head, blank, indent=1, heading=True))
            for contrast, con_part in fam_part.groupby(fam_part["contrast"].fillna(""), sort=False):
                if str(contrast):
                    rows.append(TableRow(contrast_label(str(contrast)), blank, indent=2, heading=True))
                for _, r in con_part.iterrows():
                    cells = _result_cells(r, decimals.get(str(r["outcome"])))
                    rows.append(TableRow(str(r["label"]), cells, indent=3))
    note = (
        "Estimates are adjusted mean differences (intervention minus reference) or, for outcomes analysed "
        "on the log scale, geometric-mean ratios (GMR, intervention / reference), with 95% confidence "
        "intervals. p: unadjusted; adjusted p: within the outcome's family by the method shown. "
        "n: participants analysed (missing: without the outcome; imputed in the ITT analysis where declared)."
    )
    columns = ("Population", "n", "Estimate (95% CI)", "p", "Adjusted p")
    widths = ("35%", "11%", "14%", "24%", "7%", "9%")
    return Table(columns, tuple(rows), note=note, first_column="Outcome", widths=widths)


def _scale_of(results: pd.DataFrame) -> dict[str, str]:
    if results.empty:
        return {}
    return dict(zip(results["outcome"], results["scale"], strict=False))


def _desc_cell(row: pd.Series | None, ratio: bool, group_n: int | None) -> str:
    if row is None:
        return "–"
    n = int(row["n"]) if not pd.isna(row["n"]) else 0
    if n == 0:
        return "–"
    if ratio:
        d = significant_digits(float(row["median"])) if not pd.isna(row["median"]) else 1
        text = f"{fmt_num(row['median'], d)} ({fmt_num(row['q1'], d)}–{fmt_num(row['q3'], d)})"
    else:
        d = significant_digits(float(row["sd"]) if not pd.isna(row["sd"]) else float(row["mean"]))
        text = f"{fmt_num(row['mean'], d)} ({fmt_num(row['sd'], d)})"
    if group_n is not None and n < group_n:
        text += f" [n={n}]"
    return text


def baseline_outcome_rows(
    descriptives: pd.DataFrame,
    results: pd.DataFrame,
    *,
    visit: str,
    groups: Sequence[Group],
    labels: Mapping[str, str],
    group_keys: Mapping[str, str] | None = None,
) -> list[TableRow]:
    """Baseline values of each analysed outcome per group, from the analysis' descriptives.

    Outcomes on the log scale show median (IQR), others mean (SD); ``[n=k]`` marks groups
    where fewer participants than the column's n have a value. ``group_keys`` maps a table
    group's key to the descriptives' ``arm`` value (defaults to the same key).
    """
    scales = _scale_of(results)
    keys = group_keys or {}
    base = descriptives[descriptives["visit"] == visit]
    rows = []
    for outcome in dict.fromkeys(base["outcome"]):
        part = base[base["outcome"] == outcome].set_index("arm")
        ratio = scales.get(outcome) == "ratio"
        cells = []
        for g in groups:
            key = keys.get(g.key, g.key)
            row = part.loc[key] if key in part.index else None
            cells.append(_desc_cell(row if isinstance(row, pd.Series) else None, ratio, g.n))
        stat = "median (IQR)" if ratio else "mean (SD)"
        rows.append(TableRow(f"{labels.get(outcome, outcome)}, {stat}", tuple(cells), indent=1))
    return rows


def _summary_cell(row: pd.Series | None, ratio: bool) -> str:
    if row is None or pd.isna(row["n"]) or int(row["n"]) == 0:
        return "–"
    if ratio:
        d = significant_digits(float(row["median"]))
        stat = f"{fmt_num(row['median'], d)} ({fmt_num(row['q1'], d)}–{fmt_num(row['q3'], d)})"
    else:
        d = significant_digits(float(row["sd"]) if not pd.isna(row["sd"]) else float(row["mean"]))
        stat = f"{fmt_num(row['mean'], d)} ({fmt_num(row['sd'], d)})"
    return f"{int(row['n'])} · {stat}"


def descriptives_table(
    descriptives: pd.DataFrame,
    *,
    groups: Sequence[tuple[str, str]],
    visit_order: Sequence[str],
    visit_labels: Mapping[str, str],
    labels: Mapping[str, str],
    log_scale: Mapping[str, bool],
) -> Table:
    """The analysis' descriptives, one row per outcome and visit, one column per group.

    Cells: ``n · median (Q1–Q3)`` for outcomes analysed on the log scale, else ``n · mean (SD)``.
    """
    order = {v: i for i, v in enumerate(visit_order)}
    rows: list[TableRow] = []
    for outcome in dict.fromkeys(descriptives["outcome"]):
        part = descriptives[descriptives["outcome"] == outcome]
        ratio = bool(log_scale.get(str(outcome), False))
        stat = "median (IQR)" if ratio else "mean (SD)"
        rows.append(
            TableRow(f"{labels.get(outcome, outcome)}: n · {stat}", ("",) * len(groups), heading=True)
        )
        visits = sorted(dict.fromkeys(part["visit"]), key=lambda v: order.get(v, len(order)))
        for visit in visits:
            at = part[part["visit"] == visit].drop_duplicates("arm").set_index("arm")
            cells = tuple(_summary_cell(at.loc[key] if key in at.index else None, ratio) for key, _ in groups)
            rows.append(TableRow(visit_labels.get(str(visit), str(visit)), cells, indent=1))
    note = (
        "As computed by the study analysis (StudyAnalysis.descriptives, observed values); the full "
        "table with geometric means is descriptives.csv beside this report."
    )
    first = 28.0 if len(groups) > 2 else 40.0
    widths = (f"{first:.0f}%",) + (f"{(100 - first) / max(1, len(groups)):.1f}%",) * len(groups)
    return Table(
        tuple(label for _, label in groups),
        tuple(rows),
        note=note,
        first_column="Outcome / visit",
        widths=widths,
    )
