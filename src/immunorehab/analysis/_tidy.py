"""Tidy frames for a study analysis: outcome values per participant and visit, covariates, descriptives.

Pure: the :class:`~immunorehab.analysis.sources.StudyData` frames in, new frames out. One value
per participant, visit and outcome is chosen here, by rules the methods record:

* cytometry: the most recently stored file of the participant-visit (re-gating with a new
  strategy keeps the old result in the store); several tubes carrying the gate without a
  declared ``tube`` is an error;
* cytokines: the most recent plate (run order) with a value, e.g. a re-assay after dilution;
  values below the LLOQ are used as the assay rule stored them, or treated as missing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from immunorehab.analysis.sources import StudyData
from immunorehab.errors import AnalysisError
from immunorehab.study.analysis_plan import (
    CytokineSource,
    CytometrySource,
    RehabSource,
    VisitSource,
)

__all__ = [
    "DESCRIPTIVE_COLUMNS",
    "covariate_frame",
    "describe",
    "marker_values",
    "rehab_values",
    "source_text",
]

DESCRIPTIVE_COLUMNS = ["outcome", "visit", "arm", "n", "mean", "sd", "median", "q1", "q3", "geo_mean"]
_QUANTITY_COLUMN = {"pct_parent": "pct_parent", "pct_total": "pct_total", "per_ul": "per_ul"}
_QUANTITY_TEXT = {"pct_parent": "% of parent", "pct_total": "% of all events", "per_ul": "cells/uL"}
VALUE_COLUMNS = ["participant_id", "visit", "value"]

Source = VisitSource | CytometrySource | CytokineSource | RehabSource


def source_text(source: Source) -> str:
    """A short human description of where an outcome's values come from."""
    if isinstance(source, VisitSource):
        return f"visit measure {source.measure}"
    if isinstance(source, CytometrySource):
        tube = f", tube {source.tube}" if source.tube else ""
        return f"cytometry gate {source.gate} ({_QUANTITY_TEXT[source.quantity]}{tube})"
    if isinstance(source, CytokineSource):
        return f"cytokine {source.analyte} concentration"
    return f"rehabilitation adherence: {source.quantity}"


def _visit_values(source: VisitSource, data: StudyData) -> tuple[pd.DataFrame, dict[str, Any]]:
    rows = data.part("visits", "measure", source.measure)
    return rows[VALUE_COLUMNS].reset_index(drop=True), {"rows": len(rows)}


def _cytometry_values(source: CytometrySource, data: StudyData) -> tuple[pd.DataFrame, dict[str, Any]]:
    rows = data.part("cytometry", "gate", source.gate)
    if source.tube is not None:
        rows = rows[rows["tube"] == source.tube]
    single = rows["file_id"].is_unique and not rows.duplicated(["participant_id", "visit"]).any()
    if single:  # one file per participant-visit: nothing to choose
        out = rows.rename(columns={_QUANTITY_COLUMN[source.quantity]: "value"})[VALUE_COLUMNS]
        return out.reset_index(drop=True), {"rows": len(rows), "superseded_files": 0}
    tubes = rows.groupby(["participant_id", "visit"])["tube"].nunique()
    if (tubes > 1).any():
        (pid, visit) = tubes[tubes > 1].index[0]
        found = ", ".join(sorted(map(str, rows.loc[rows["participant_id"] == pid, "tube"].unique())))
        raise AnalysisError(
            f"gate {source.gate!r} is stored from several tubes for {pid} at {visit} (tubes {found}): "
            "name the tube in the outcome's source (tube: ...)"
        )
    latest = rows.sort_values("file_id", kind="stable").drop_duplicates(
        ["participant_id", "visit"], keep="last"
    )
    out = latest.rename(columns={_QUANTITY_COLUMN[source.quantity]: "value"})[VALUE_COLUMNS]
    note = {"rows": len(rows), "superseded_files": int(len(rows) - len(latest))}
    return out.reset_index(drop=True), note


def _stored_rule(rows: pd.DataFrame) -> str:
    """How the assay stored results below the LLOQ, read back from value / (LLOQ x dilution)."""
    below = rows[rows["flag"].str.contains("<LLOQ", regex=False, na=False)]
    if below.empty:
        return "none below the LLOQ"
    ratio = (below["stored"] / (below["lloq"] * below["dilution"])).to_numpy(dtype=float)
    if np.all(np.isnan(ratio)):
        return "censored (no value stored)"
    for name, target in (("LLOQ/2", 0.5), ("LLOQ/sqrt(2)", 1 / math.sqrt(2)), ("LLOQ", 1.0)):
        if np.allclose(ratio, target, rtol=1e-6, equal_nan=False):
            return name
    return "mixed (see the assay rules of each plate)"


def _cytokine_values(source: CytokineSource, data: StudyData) -> tuple[pd.DataFrame, dict[str, Any]]:
    rows = data.part("cytokines", "analyte", source.analyte).copy()
    rows["stored"] = rows["concentration"]
    below = rows["flag"].str.contains("<LLOQ", regex=False, na=False)
    if source.below_lloq == "missing":
        rows.loc[below, "concentration"] = np.nan
    rows["has_value"] = rows["concentration"].notna()
    chosen = rows.sort_values(["has_value", "run_order"], kind="stable").drop_duplicates(
        ["participant_id", "visit"], keep="last"
    )
    note = {
        "rows": len(rows),
        "below_lloq": int(below.sum()),
        "above_uloq": int(rows["flag"].str.contains(">ULOQ", regex=False, na=False).sum()),
        "stored_below_lloq_as": _stored_rule(rows),
        "below_lloq_analysed_as": "stored value" if source.below_lloq == "as_stored" else "missing",
        "duplicates_resolved": int(len(rows) - len(chosen)),
        "unit": ", ".join(sorted(map(str, rows["unit"].dropna().unique()))),
    }
    out = chosen.rename(columns={"concentration": "value"})[VALUE_COLUMNS]
    return out.reset_index(drop=True), note


def marker_values(source: Source, data: StudyData) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``participant_id, visit, value`` of a visit/cytometry/cytokine source, and a note on choices made."""
    if isinstance(source, VisitSource):
        return _visit_values(source, data)
    if isinstance(source, CytometrySource):
        return _cytometry_values(source, data)
    if isinstance(source, CytokineSource):
        return _cytokine_values(source, data)
    raise AnalysisError(f"{source_text(source)} has no visits; use rehab_values")


def rehab_values(source: RehabSource, data: StudyData) -> pd.DataFrame:
    """``participant_id, value`` of an adherence quantity (prescribed participants only)."""
    if data.rehab is None or data.rehab.empty:
        return pd.DataFrame(columns=["participant_id", "value"])
    out = data.rehab[["participant_id", source.quantity]].rename(columns={source.quantity: "value"})
    out["value"] = out["value"].astype(float)
    return out.reset_index(drop=True)


def covariate_frame(participants: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Covariate columns by name (a stratification factor's level, else the participant field)."""
    out = pd.DataFrame(index=participants.index)
    for name in names:
        factor = f"factor:{name}"
        out[name] = participants[factor] if factor in participants.columns else participants[name]
    return out


def describe(
    values: pd.DataFrame, outcome: str, visit_order: Sequence[str], group_order: Sequence[str] = ()
) -> pd.DataFrame:
    """n, mean, SD, median, quartiles (R type 7) and geometric mean per visit and ``group``.

    ``values`` has ``visit``, ``group`` and ``value``; rows come out in visit order, then group
    order (groups not listed last, alphabetically). The geometric mean is NaN for a group with
    a value <= 0.
    """
    frame = values.dropna(subset=["value"])
    if frame.empty:
        return pd.DataFrame(columns=DESCRIPTIVE_COLUMNS)
    index = frame.groupby(["visit", "group"], sort=False).ngroup().to_numpy()
    labels = (
        frame[["visit", "group"]].drop_duplicates().set_axis(["visit", "arm"], axis=1).reset_index(drop=True)
    )
    keys = pd.Series(index, index=frame.index)
    grouped = frame["value"].groupby(keys, sort=True)
    out = grouped.agg(["count", "mean", "std", "median"])
    quartiles = grouped.quantile(np.array([0.25, 0.75])).unstack()
    out["q1"], out["q3"] = quartiles[0.25], quartiles[0.75]
    positive = frame["value"] > 0
    logs = np.log(frame["value"].where(positive))
    geo = np.exp(logs.groupby(keys, sort=True).mean())
    all_positive = positive.groupby(keys, sort=True).all()
    out["geo_mean"] = geo.where(all_positive)
    out = out.rename(columns={"count": "n", "std": "sd"}).reset_index(drop=True)
    out = pd.concat([labels, out], axis=1)
    out.insert(0, "outcome", outcome)
    rank = {v: i for i, v in enumerate(visit_order)}
    grank = {g: i for i, g in enumerate(group_order)}
    out["_v"] = out["visit"].map(lambda v: rank.get(v, len(rank)))
    out["_g"] = out["arm"].map(lambda g: grank.get(g, len(grank)))
    out = out.sort_values(["_v", "_g", "arm"], kind="stable").drop(columns=["_v", "_g"])
    out["n"] = out["n"].astype(int)
    return out[DESCRIPTIVE_COLUMNS].reset_index(drop=True)
