"""How well the pipeline recovered a simulated study's truth (pure functions on tidy frames).

``gating_recovery``     stored gate results vs the true fractions of the same events, per file
``effect_recovery``     the analysis' arm effects vs the true effects (trial), with CI coverage
``cohort_recovery``     prevalence, inflammation by symptom group and normalisation (cohort)

Tolerance of gated fractions (:func:`gating_tolerance`): the truth is counted on the same events
(the simulator's labels), so sampling error cancels and only misclassification where populations
overlap remains. The cytometry recovery oracle (tests/integration/test_cytometry_recovery.py)
bounds it at 1.0 percentage point of the parent for every T-cell subset in 50,000-event files
(parents of about 3,000 events and more; worst seen 0.56). Gate placement from a density valley
is noisier in smaller parents, its error shrinking as 1/sqrt(events), so the tolerance is
1.0 x sqrt(3000 / parent events), never below 1.0 point: 1.4 points for a 1,500-event CD8
compartment, 2.4 for 500 (acute lymphopenia in a 15,000-event file).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "GATING_TOLERANCE_PCT",
    "gating_tolerance",
    "cohort_recovery",
    "effect_recovery",
    "gating_recovery",
]

GATING_TOLERANCE_PCT = 1.0
#: Parent size (events) at which the oracle's 1.0-point bound was established.
ORACLE_PARENT_EVENTS = 3_000


def gating_tolerance(parent_events: np.ndarray | pd.Series | float) -> np.ndarray:
    """Allowed |gated - true| % of parent for a parent of ``parent_events`` (see the module docstring)."""
    n = np.maximum(np.asarray(parent_events, dtype=float), 1.0)
    tolerance: np.ndarray = np.maximum(
        GATING_TOLERANCE_PCT, GATING_TOLERANCE_PCT * np.sqrt(ORACLE_PARENT_EVENTS / n)
    )
    return tolerance


def gating_recovery(stored: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Stored % of parent next to the true % of parent of the same file and gate.

    Parameters
    ----------
    stored : ``participant_id, visit, gate, pct_parent`` (the analysis' cytometry source).
    truth : ``truth_fcs.csv`` (``participant_id, visit_id, gate, true_pct_parent, ...``).

    Returns
    -------
    DataFrame
        ``participant_id, visit, gate, pct_parent, true_pct_parent, diff`` (points of the parent),
        ``parent_events``, ``tolerance`` and ``within`` (|diff| <= tolerance), one row per stored
        result that has a truth.
    """
    keep = ["participant_id", "visit", "gate", "true_pct_parent", "true_parent_count"]
    right = truth.rename(columns={"visit_id": "visit"})[keep]
    merged = stored[["participant_id", "visit", "gate", "pct_parent"]].merge(
        right, on=["participant_id", "visit", "gate"], how="inner"
    )
    merged["diff"] = merged["pct_parent"] - merged["true_pct_parent"]
    merged = merged.rename(columns={"true_parent_count": "parent_events"})
    merged["tolerance"] = gating_tolerance(merged["parent_events"])
    merged["within"] = merged["diff"].abs() <= merged["tolerance"]
    return merged.reset_index(drop=True)


def effect_recovery(results: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """The analysis' estimates next to the true effects; ``covered`` when the CI holds the truth.

    Parameters
    ----------
    results : the study analysis' ``results`` (``outcome, population, estimate, ci_low, ci_high``).
    truth : ``truth_effects.csv`` (``outcome, population, true_effect``).
    """
    merged = results.merge(truth[["outcome", "population", "true_effect"]], on=["outcome", "population"])
    merged["covered"] = (merged["ci_low"] <= merged["true_effect"]) & (
        merged["true_effect"] <= merged["ci_high"]
    )
    columns = ["outcome", "label", "family", "population", "scale", "estimate", "ci_low", "ci_high"]
    return merged[[*columns, "p_adjusted", "true_effect", "covered"]].reset_index(drop=True)


def _records(frame: pd.DataFrame) -> list[dict[Any, Any]]:
    return frame.to_dict(orient="records")


def _geo_means(descriptives: pd.DataFrame, outcome: str) -> dict[tuple[str, str], float]:
    rows = _records(descriptives[descriptives["outcome"] == outcome])
    return {(str(r["visit"]), str(r["arm"])): float(r["geo_mean"]) for r in rows}


def cohort_recovery(
    descriptives: pd.DataFrame,
    prevalence: pd.DataFrame,
    km_summary: pd.DataFrame | None,
    truth: Mapping[str, Any],
    *,
    cox: pd.DataFrame | None = None,
    outcome: str = "il6",
) -> dict[str, Any]:
    """Cohort answers next to the truth: prevalence per visit, IL-6 by symptom group, normalisation.

    Returns
    -------
    dict
        ``prevalence``: visit -> (estimate, ci_low, ci_high, true share among those seen, target);
        ``inflammation``: visit -> (symptomatic geo mean, asymptomatic geo mean, their ratio);
        ``true_inflammation``: the same from the true concentrations; ``normalised_24m``: true
        share of participants whose marker is below the threshold at 24 months; ``median_months``:
        group -> Kaplan-Meier median time to IL-6 normalisation; ``cox``: term -> (hazard ratio,
        CI low, CI high, p) of the Cox model of IL-6 normalisation.
    """
    summary = truth["summary"]
    targets = {"month6": 0.45, "month12": 0.37, "month24": 0.39}
    out: dict[str, Any] = {"prevalence": {}, "inflammation": {}, "true_inflammation": {}}
    for row in _records(prevalence[prevalence["group"] == "all"]):
        visit = str(row["visit"])
        out["prevalence"][visit] = (
            float(row["proportion"]),
            float(row["ci_low"]),
            float(row["ci_high"]),
            summary["prevalence_recorded"].get(visit),
            targets.get(visit),
        )
    geo = _geo_means(descriptives, outcome)
    true = summary["true_il6_geo_mean_by_symptoms_12m"]
    for visit in ("baseline", "month6", "month12", "month24"):
        sym, asym = geo.get((visit, "symptomatic"), np.nan), geo.get((visit, "asymptomatic"), np.nan)
        out["inflammation"][visit] = (sym, asym, sym / asym if asym else np.nan)
        t_sym, t_asym = true.get(f"{visit}/symptomatic"), true.get(f"{visit}/asymptomatic")
        if t_sym is not None and t_asym is not None:
            out["true_inflammation"][visit] = (t_sym, t_asym, t_sym / t_asym)
    out["normalised_24m"] = summary["true_share_normal_at_24m"]
    if km_summary is not None and not km_summary.empty:
        rows = _records(km_summary[km_summary["outcome"] == f"{outcome}_normal"])
        out["median_months"] = {str(r["group"]): float(r["median"]) for r in rows}
    if cox is not None and not cox.empty:
        rows = _records(cox[cox["outcome"] == f"{outcome}_normal"])
        out["cox"] = {
            str(r["term"]): (
                float(r["hazard_ratio"]),
                float(r["hr_ci_low"]),
                float(r["hr_ci_high"]),
                float(r["p_value"]),
            )
            for r in rows
        }
    return out
