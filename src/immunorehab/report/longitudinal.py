"""Tables and figures of the analysis' further tidy frames (pure: frames in, tables/figures out).

``StudyAnalysis.by_visit`` (MMRM contrasts at every visit) and ``StudyAnalysis.cohort``:
``km`` and ``km_summary`` (time to normalisation, Kaplan-Meier), ``log_rank``, ``cox``,
``prevalence`` (Wilson intervals) and ``mixed_fixed`` (mixed models over time). Every table
starts with ``outcome, label``; numbers are formatted, never recomputed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import pandas as pd

from immunorehab.report.embed import EmbeddedFigure, embed
from immunorehab.report.figures import km_figure, prevalence_figure
from immunorehab.report.outcomes import POPULATIONS, fmt_estimate, fmt_p, outcome_decimals
from immunorehab.report.tables import Table, TableRow, fmt_num

__all__ = ["cohort_figures", "cohort_tables", "by_visit_table"]

Labeller = Callable[[str], str]


def _f(value: object, digits: int = 2) -> str:
    try:
        return fmt_num(float(value), digits)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"


def by_visit_table(
    frame: pd.DataFrame, *, contrast_label: Labeller, visit_labels: Mapping[str, str]
) -> Table:
    """MMRM contrasts at every visit: outcome, population, visit, contrast, estimate (95% CI), p."""
    rows = []
    decimals = outcome_decimals(frame)
    for (_, label), part in frame.groupby(["outcome", "label"], sort=False):
        rows.append(TableRow(str(label), ("",) * 5, heading=True))
        for r in part.to_dict(orient="records"):
            ratio = r.get("scale") == "ratio"
            est = fmt_estimate(
                float(r["estimate"]),
                float(r["ci_low"]),
                float(r["ci_high"]),
                ratio=ratio,
                decimals=decimals.get(str(r["outcome"])),
            )
            cells = (
                POPULATIONS.get(str(r["population"]), str(r["population"])),
                visit_labels.get(str(r["visit"]), str(r["visit"])),
                contrast_label(str(r["contrast"])),
                ("GMR " if ratio else "") + est,
                fmt_p(r["p_value"]),
            )
            rows.append(TableRow("", cells, indent=1))
    note = (
        "Contrasts of the mixed model for repeated measures at every follow-up visit (StudyAnalysis.by_visit)"
    )
    columns = ("Population", "Visit", "Contrast", "Estimate (95% CI)", "p")
    return Table(columns, tuple(rows), note=note, first_column="Outcome")


def _km_summary(frame: pd.DataFrame, group_label: Labeller, unit: str) -> Table:
    rows = []
    for r in frame.to_dict(orient="records"):
        median = _f(r.get("median"))
        ci = f"{_f(r.get('median_ci_low'))} to {_f(r.get('median_ci_high'))}"
        cells = (group_label(str(r.get("group"))), str(r.get("n")), str(r.get("events")), f"{median} ({ci})")
        rows.append(TableRow(str(r["label"]), cells))
    note = f"Median time to normalisation in {unit} with 95% CI (– where not reached); Kaplan-Meier."
    return Table(
        ("Group", "n at risk", "Events", "Median (95% CI)"), tuple(rows), note=note, first_column="Marker"
    )


def _log_rank(frame: pd.DataFrame) -> Table:
    rows = []
    for (_, label), part in frame.groupby(["outcome", "label"], sort=False):
        r = part.iloc[0]
        rows.append(TableRow(str(label), (_f(r["chisq"]), str(int(r["df"])), fmt_p(r["p_value"]))))
    return Table(
        ("Chi-square", "df", "p"), tuple(rows), note="Log-rank test between groups.", first_column="Marker"
    )


def _cox(frame: pd.DataFrame, term_label: Labeller) -> Table:
    rows = []
    for (_, label), part in frame.groupby(["outcome", "label"], sort=False):
        rows.append(TableRow(str(label), ("",) * 3, heading=True))
        for r in part.to_dict(orient="records"):
            hr = fmt_estimate(
                float(r["hazard_ratio"]), float(r["hr_ci_low"]), float(r["hr_ci_high"]), ratio=True
            )
            events = f"{r.get('n', '–')} / {r.get('n_events', '–')}"
            rows.append(TableRow(term_label(str(r["term"])), (hr, fmt_p(r["p_value"]), events), indent=1))
    note = "Cox proportional-hazards models (Efron ties): hazard ratio of normalising, 95% CI."
    return Table(("HR (95% CI)", "p", "n / events"), tuple(rows), note=note, first_column="Marker / term")


def _prevalence(frame: pd.DataFrame, group_label: Labeller, visit_labels: Mapping[str, str]) -> Table:
    rows = []
    for (_, label), part in frame.groupby(["outcome", "label"], sort=False):
        rows.append(TableRow(str(label), ("",) * 3, heading=True))
        for r in part.to_dict(orient="records"):
            p = 100 * float(r["proportion"])
            ci = f"{100 * float(r['ci_low']):.1f} to {100 * float(r['ci_high']):.1f}"
            cells = (group_label(str(r["group"])), f"{int(r['events'])} / {int(r['n'])}", f"{p:.1f}% ({ci})")
            rows.append(TableRow(visit_labels.get(str(r["visit"]), str(r["visit"])), cells, indent=1))
    note = "Proportion per visit with Wilson score 95% intervals."
    return Table(("Group", "Events / n", "% (95% CI)"), tuple(rows), note=note, first_column="Visit")


def _mixed(frame: pd.DataFrame, term_label: Labeller) -> Table:
    rows = []
    for (_, label), part in frame.groupby(["outcome", "label"], sort=False):
        log = str(part["scale"].iloc[0]) == "log" if "scale" in part else False
        rows.append(TableRow(str(label) + (" (log scale)" if log else ""), ("",) * 3, heading=True))
        for r in part.to_dict(orient="records"):
            lo, hi = float(r["ci_low"]), float(r["ci_high"])
            est = float(r["estimate"])
            text = (
                "–"
                if not all(math.isfinite(v) for v in (est, lo, hi))
                else f"{est:.3f} ({lo:.3f} to {hi:.3f})"
            )
            rows.append(
                TableRow(
                    term_label(str(r["term"])), (text, _f(r.get("df"), 1), fmt_p(r["p_value"])), indent=1
                )
            )
    note = (
        "Fixed effects of the linear mixed models (random intercept and slope per participant; Satterthwaite "
        "df). On the log scale, exp(estimate) is a ratio of geometric means."
    )
    return Table(("Estimate (95% CI)", "df", "p"), tuple(rows), note=note, first_column="Outcome / term")


def cohort_tables(
    cohort: Mapping[str, pd.DataFrame],
    *,
    group_label: Labeller,
    term_label: Labeller,
    visit_labels: Mapping[str, str],
    time_unit: str,
) -> list[tuple[str, Table]]:
    """Titled tables of every cohort frame present (empty frames are left out)."""
    out: list[tuple[str, Table]] = []

    def have(name: str) -> bool:
        return name in cohort and not cohort[name].empty

    if have("mixed_fixed"):
        out.append(("Markers over time: mixed models", _mixed(cohort["mixed_fixed"], term_label)))
    if have("km_summary"):
        out.append(("Time to normalisation", _km_summary(cohort["km_summary"], group_label, time_unit)))
    if have("log_rank"):
        out.append(("Log-rank tests", _log_rank(cohort["log_rank"])))
    if have("cox"):
        out.append(("Cox models of time to normalisation", _cox(cohort["cox"], term_label)))
    if have("prevalence"):
        out.append(("Prevalence per visit", _prevalence(cohort["prevalence"], group_label, visit_labels)))
    return out


def cohort_figures(
    cohort: Mapping[str, pd.DataFrame],
    *,
    group_label: Labeller,
    visits: Sequence[tuple[str, str]],
    time_unit: str,
) -> list[EmbeddedFigure]:
    """Kaplan-Meier curves per marker and prevalence per visit, from the analysis' tables."""
    out = []
    km = cohort.get("km")
    if km is not None and not km.empty:
        for k, ((_, label), part) in enumerate(km.groupby(["outcome", "label"], sort=False), start=1):
            fig = km_figure(part, title=str(label), time_label=time_unit, group_label=group_label)
            caption = (
                "Kaplan-Meier estimate, pointwise 95% CIs dotted, per group (StudyAnalysis.cohort['km'])."
            )
            out.append(embed(fig, key=f"km{k}", title=f"Time to normalisation: {label}", caption=caption))
    prev = cohort.get("prevalence")
    if prev is not None and not prev.empty:
        for k, ((_, label), part) in enumerate(prev.groupby(["outcome", "label"], sort=False), start=1):
            fig = prevalence_figure(part, title=str(label), visits=visits, group_label=group_label)
            caption = "Proportion per visit with Wilson 95% intervals (StudyAnalysis.cohort['prevalence'])."
            out.append(embed(fig, key=f"prevalence{k}", title=f"Prevalence: {label}", caption=caption))
    return out
