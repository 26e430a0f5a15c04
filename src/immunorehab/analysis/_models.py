"""One outcome, one population: build the analysis frame and call the verified pure functions.

Pure (frames in, result rows out). Every number comes from :func:`~immunorehab.analysis.ancova`,
:func:`~immunorehab.analysis.ancova_mi`, :func:`~immunorehab.analysis.completers_ancova`,
:func:`~immunorehab.analysis.mmrm` or :func:`~immunorehab.analysis.mixed_model` called on the
frame that is also returned (``dataset``), so each result can be recomputed from what was saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from immunorehab.analysis.ancova import ancova
from immunorehab.analysis.imputation import ancova_mi, completers_ancova
from immunorehab.analysis.mixed import mixed_model
from immunorehab.analysis.mmrm import mmrm
from immunorehab.analysis.results import DfMethod
from immunorehab.errors import AnalysisDataError
from immunorehab.study.analysis_plan import Imputation

__all__ = ["FitSettings", "OutcomeFit", "ancova_frame", "fit_ancova", "fit_mixed", "fit_mmrm", "long_frame"]

BASELINE = "baseline_value"
FOLLOW_UP = "followup_value"
CONTRAST_COLUMNS = ["contrast", "estimate", "se", "ci_low", "ci_high", "p_value"]
Population = Literal["itt", "per_protocol", "cohort"]


@dataclass(frozen=True, slots=True)
class FitSettings:
    """Model settings shared by the outcomes of one analysis."""

    reference: str
    contrast_arms: tuple[str, ...]
    covariates: tuple[str, ...]
    conf_level: float
    df_method: DfMethod
    unit_days: float
    unit: str
    imputation: Imputation | None = None
    mice_seed: tuple[int, int] | None = None


@dataclass(slots=True)
class OutcomeFit:
    """Rows for ``results`` and ``by_visit`` plus what the methods record (how it was fitted)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    by_visit: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    dataset: pd.DataFrame | None = None


def _wide(values: pd.DataFrame, visits: Sequence[str]) -> pd.DataFrame:
    sub = values[values["visit"].isin(list(visits))]
    table = sub.pivot(index="participant_id", columns="visit", values="value")
    return table.reindex(columns=list(visits))


def ancova_frame(
    values: pd.DataFrame, people: pd.DataFrame, *, baseline: str, visit: str, keep: Sequence[str]
) -> pd.DataFrame:
    """One row per participant of ``people``: ``keep`` columns, baseline and follow-up value."""
    wide = _wide(values, [baseline, visit]).rename(columns={baseline: BASELINE, visit: FOLLOW_UP})
    frame = people[list(keep)].merge(wide, left_on="participant_id", right_index=True, how="left")
    return frame.reset_index(drop=True)


def long_frame(
    values: pd.DataFrame,
    people: pd.DataFrame,
    *,
    baseline: str | None,
    visits: Sequence[str],
    keep: Sequence[str],
) -> pd.DataFrame:
    """One row per participant of ``people`` and visit: ``keep`` columns, (baseline) and value."""
    rows = values[values["visit"].isin(list(visits))]
    grid = pd.MultiIndex.from_product(
        [people["participant_id"], list(visits)], names=["participant_id", "visit"]
    )
    long = rows.set_index(["participant_id", "visit"])["value"].reindex(grid).reset_index()
    frame = people[list(keep)].merge(long, on="participant_id", how="right")
    if baseline is not None:
        base = values[values["visit"] == baseline].set_index("participant_id")["value"]
        frame.insert(len(keep), BASELINE, frame["participant_id"].map(base).astype(float))
    return frame


def _row(contrast: pd.Series, scale: str, n: int, n_missing: int) -> dict[str, Any]:
    out = {c: contrast[c] for c in CONTRAST_COLUMNS}
    out.update(scale=scale, n=int(n), n_missing=int(n_missing))
    return out


def _keep(table: pd.DataFrame, settings: FitSettings) -> pd.DataFrame:
    wanted = {f"{arm} vs {settings.reference}" for arm in settings.contrast_arms}
    return table[table["contrast"].isin(wanted)]


def _missing(frame: pd.DataFrame, columns: Sequence[str]) -> int:
    return int(frame[list(columns)].isna().any(axis=1).sum())


def fit_ancova(
    frame: pd.DataFrame,
    *,
    population: Population,
    log: bool,
    impute: bool,
    settings: FitSettings,
) -> OutcomeFit:
    """ANCOVA of the follow-up value; ITT by MICE when declared and values are missing."""
    scale = "ratio" if log else "difference"
    common: dict[str, Any] = {
        "outcome": FOLLOW_UP,
        "baseline": BASELINE,
        "arm": "arm",
        "reference": settings.reference,
        "covariates": settings.covariates,
        "log": log,
        "conf_level": settings.conf_level,
    }
    fit = OutcomeFit()
    n_missing = _missing(frame, [BASELINE, FOLLOW_UP])
    imp = settings.imputation
    if population == "itt" and imp is not None and impute and n_missing > 0:
        seed = settings.mice_seed or (imp.seed, 0)
        pooled = ancova_mi(
            frame,
            rng=np.random.default_rng(list(seed)),
            m=imp.m,
            n_iter=imp.iterations,
            method=imp.impute_with,
            **common,
        )
        table, n = pooled.contrasts, pooled.n
        fit.notes = {"method": "mice", "m": imp.m, "seed": list(seed), "imputed_participants": n_missing}
    elif population == "per_protocol":
        result = completers_ancova(frame, completer="completer", **common)
        table, n = result.table, result.n
        n_missing = int(frame["completer"].sum()) - n
        fit.notes = {"method": "complete_case", "completers": int(frame["completer"].sum())}
    else:
        result = ancova(frame, **common)
        table, n = result.table, result.n
        fit.notes = {"method": "complete_case"}
    fit.rows = [_row(r, scale, n, n_missing) for _, r in _keep(table, settings).iterrows()]
    return fit


def fit_mmrm(
    frame: pd.DataFrame, *, visits: Sequence[str], primary: str, log: bool, settings: FitSettings
) -> OutcomeFit:
    """MMRM over the follow-up visits; the results row is the primary visit's contrast."""
    result = mmrm(
        frame,
        outcome="value",
        subject="participant_id",
        visit="visit",
        arm="arm",
        baseline=BASELINE,
        reference=settings.reference,
        visits=list(visits),
        covariates=settings.covariates,
        log=log,
        df_method=settings.df_method,
        conf_level=settings.conf_level,
    )
    scale = "ratio" if log else "difference"
    at = frame[frame["visit"] == primary]
    n_missing = _missing(at, [BASELINE, "value"])
    table = _keep(result.table, settings)
    fit = OutcomeFit(notes={"method": "mmrm", "df_method": settings.df_method, "converged": result.converged})
    fit.rows = [
        _row(r, scale, result.n_subjects, n_missing) for _, r in table[table["visit"] == primary].iterrows()
    ]
    cols = ["visit", "contrast", "estimate", "se", "df", "ci_low", "ci_high", "p_value"]
    fit.by_visit = [{**{c: r[c] for c in cols}, "scale": scale} for _, r in table.iterrows()]
    return fit


def _group_terms(frame: pd.DataFrame, group: str, levels: Sequence[str]) -> list[str]:
    """Numeric dummy and dummy x time columns for each non-reference level of ``group``."""
    names = []
    for level in levels[1:]:
        dummy = f"{group}[{level}]"
        frame[dummy] = (frame[group] == level).astype(float)
        frame[f"{dummy}:time"] = frame[dummy] * frame["time"]
        names += [dummy, f"{dummy}:time"]
    return names


def fit_mixed(
    frame: pd.DataFrame,
    *,
    group: str | None,
    levels: Sequence[str],
    log: bool,
    report_levels: bool,
    settings: FitSettings,
) -> OutcomeFit:
    """Random intercept and slope over time; contrasts are group (x time) terms.

    ``frame`` holds ``participant_id, visit, time, value`` (and ``group``). With ``log`` the
    model is fitted to log(value) and estimates are back-transformed to ratios. The fit's
    ``dataset`` is the exact frame given to :func:`mixed_model` (``value`` on the model scale,
    dummy and dummy x time columns); ``tables`` hold the fixed and random effects.
    """
    data = frame.dropna(subset=["value"]).copy()
    if log:
        bad = data["value"] <= 0
        if bad.any():
            row = data[bad].iloc[0]
            raise AnalysisDataError(
                f"log transform needs values > 0; {row['participant_id']} at {row['visit']} "
                f"has {row['value']!r}"
            )
        data["value"] = np.log(data["value"])
    terms = _group_terms(data, group, levels) if group is not None else []
    result = mixed_model(
        data,
        outcome="value",
        time="time",
        subject="participant_id",
        covariates=[*terms, *settings.covariates],
        conf_level=settings.conf_level,
    )
    table = result.table.set_index("term")
    scale = "ratio" if log else "difference"
    per = f"change per {settings.unit.rstrip('s')}"
    wanted: list[tuple[str, str]] = []
    for level in levels[1:]:
        name = f"{level} vs {levels[0]}"
        if report_levels:
            wanted.append((f"{group}[{level}]", name))
        wanted.append((f"{group}[{level}]:time", f"{name}: {per}"))
    if group is None:
        wanted = [("time", per)]
    n_people = frame["participant_id"].nunique()
    fit = OutcomeFit(notes={"method": "mixed", "df_method": "satterthwaite", "optimizer": result.optimizer})
    for term, contrast in wanted:
        r = table.loc[term]
        est, lo, hi = (np.exp(r[c]) if log else r[c] for c in ("estimate", "ci_low", "ci_high"))
        fit.rows.append(
            {
                "contrast": contrast,
                "estimate": est,
                "se": r["se"],
                "ci_low": lo,
                "ci_high": hi,
                "p_value": r["p_value"],
                "scale": scale,
                "n": result.n_groups,
                "n_missing": int(n_people - result.n_groups),
            }
        )
    fit.notes["residual_sd"] = result.residual_sd
    fit.notes["log_likelihood"] = result.log_likelihood
    fit.tables = {
        "mixed_fixed": result.table.assign(scale="log" if log else "identity"),
        "mixed_random": result.random_effects.rename(columns={"group": "grouping"}),
    }
    fit.dataset = data.reset_index(drop=True)
    return fit
