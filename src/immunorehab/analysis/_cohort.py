"""Cohort analyses: groups from a visit measure, time to normalisation, prevalence per visit.

Pure (frames in, tidy tables out). Numbers come from the verified pure functions
(:func:`~immunorehab.analysis.kaplan_meier`, :func:`~immunorehab.analysis.log_rank`,
:func:`~immunorehab.analysis.cox`, :func:`~immunorehab.analysis.prevalence_by_visit`) called on the
frame that is returned with them.

Time to normalisation: a participant whose baseline value is abnormal is followed over the
declared visits; the event time is the scheduled day of the first visit with a normal value
(``<= threshold`` for ``normal: below``, ``>= threshold`` for ``above``) in the plan's time unit;
without one, the time is censored at the last visit with a value. Participants normal at
baseline (not at risk), without a baseline value, or without any follow-up value are counted
and left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from immunorehab.analysis.prevalence import prevalence_by_visit
from immunorehab.analysis.survival import cox, kaplan_meier, log_rank
from immunorehab.study.analysis_plan import Grouping, Normalisation, Prevalence

__all__ = [
    "CohortTables",
    "group_labels",
    "group_levels",
    "normalisation_frame",
    "run_normalisation",
    "run_prevalence",
]


@dataclass(slots=True)
class CohortTables:
    """Tidy tables of one cohort analysis (keys of ``StudyAnalysis.cohort``) and notes."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    dataset: pd.DataFrame | None = None


def group_labels(group: Grouping, visits: pd.DataFrame) -> pd.Series:
    """``participant_id -> group label`` from the group measure at the group visit."""
    rows = visits[(visits["measure"] == group.measure) & (visits["visit"] == group.visit)]
    flag = rows["value"]
    text = rows["text"].where(flag.isna(), flag.map({1.0: group.true_label, 0.0: group.false_label}))
    return (
        pd.Series(text.to_numpy(), index=rows["participant_id"].to_numpy(), name=group.id)
        .dropna()
        .astype(str)
    )


def group_levels(group: Grouping, labels: pd.Series) -> list[str]:
    """Group labels present, the reference (declared, else the false label) first."""
    present = sorted(set(labels))
    reference = group.reference or group.false_label
    return ([reference] if reference in present else []) + [g for g in present if g != reference]


def _with_label(table: pd.DataFrame, ident: str, label: str) -> pd.DataFrame:
    out = table.copy()
    out.insert(0, "label", label)
    out.insert(0, "outcome", ident)
    return out


def normalisation_frame(
    values: pd.DataFrame,
    people: pd.DataFrame,
    item: Normalisation,
    *,
    baseline: str,
    times: Mapping[str, float],
) -> tuple[pd.DataFrame, dict[str, int]]:
    """``people`` columns plus ``time`` and ``event`` for those at risk, and the counts left out."""
    visits = list(item.visits)
    wide = values.pivot(index="participant_id", columns="visit", values="value")
    wide = wide.reindex(index=people["participant_id"], columns=[baseline, *visits])
    arr = wide[visits].to_numpy(dtype=float)
    base = wide[baseline].to_numpy(dtype=float)

    def normal(x: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            below = item.normal == "below"
            out = np.less_equal(x, item.threshold) if below else np.greater_equal(x, item.threshold)
        result: np.ndarray = np.logical_and(out, ~np.isnan(x))
        return result

    observed = ~np.isnan(arr)
    hit = normal(arr)
    stamp = np.array([times[v] for v in visits])
    first = np.argmax(hit, axis=1)
    last = observed.shape[1] - 1 - np.argmax(observed[:, ::-1], axis=1)
    event: np.ndarray = np.asarray(hit.any(axis=1))
    time = np.where(event, stamp[first], stamp[last])
    no_base, at_base, no_follow = np.isnan(base), normal(base), ~observed.any(axis=1)
    at_risk = ~no_base & ~at_base & ~no_follow
    frame = people.reset_index(drop=True).loc[at_risk].copy()
    frame["time"], frame["event"] = time[at_risk], event[at_risk].astype(int)
    counts = {
        "at_risk": int(at_risk.sum()),
        "normal_at_baseline": int((~no_base & at_base).sum()),
        "no_baseline_value": int(no_base.sum()),
        "no_follow_up_value": int((~no_base & ~at_base & no_follow).sum()),
        "events": int(frame["event"].sum()),
    }
    return frame.reset_index(drop=True), counts


def _dummies(frame: pd.DataFrame, group: str, levels: Sequence[str]) -> list[str]:
    names = []
    for level in levels[1:]:
        name = f"{group}[{level}]"
        frame[name] = (frame[group] == level).astype(float)
        names.append(name)
    return names


def run_normalisation(
    frame: pd.DataFrame,
    item: Normalisation,
    *,
    group: str | None,
    levels: Sequence[str],
    conf_level: float,
) -> CohortTables:
    """Kaplan-Meier per group, log-rank between groups, Cox with group and covariates."""
    out = CohortTables(dataset=frame)
    km = kaplan_meier(frame, time="time", event="event", group=group, conf_level=conf_level)
    out.tables["km"] = _with_label(km.table, item.id, item.label)
    out.tables["km_summary"] = _with_label(km.summary, item.id, item.label)
    has_groups = group is not None and frame[group].nunique() >= 2
    if has_groups and frame["event"].sum() > 0:
        lr = log_rank(frame, time="time", event="event", group=str(group))
        table = lr.table.assign(chisq=lr.chisq, df=lr.df, p_value=lr.p_value)
        out.tables["log_rank"] = _with_label(table, item.id, item.label)
    terms = _dummies(frame, str(group), levels) if has_groups else []
    covariates = [*terms, *item.covariates]
    if covariates and frame["event"].sum() > 0:
        fit = cox(frame, time="time", event="event", covariates=covariates, conf_level=conf_level)
        out.tables["cox"] = _with_label(fit.table.assign(n=fit.n, n_events=fit.n_events), item.id, item.label)
    elif frame["event"].sum() == 0:
        out.notes["note"] = "no participant normalised: no log-rank test or Cox model"
    return out


def run_prevalence(
    frame: pd.DataFrame, item: Prevalence, *, group: str | None, visit_order: Sequence[str], conf_level: float
) -> CohortTables:
    """Proportion with the condition per visit (and group), Wilson intervals."""
    result = prevalence_by_visit(frame, visit="visit", indicator="value", group=group, conf_level=conf_level)
    table = result.table
    rank = {v: i for i, v in enumerate(visit_order)}
    table = table.assign(_o=table["visit"].map(rank)).sort_values(["_o", "group"], kind="stable")
    return CohortTables(
        tables={
            "prevalence": _with_label(table.drop(columns="_o").reset_index(drop=True), item.id, item.label)
        },
        dataset=frame,
    )
