"""Inflammation profile: concentrations against a healthy reference, composite score, persistence.

The reference table (CSV: ``analyte, unit, median, q1, q3, platform, source, note``) gives a
healthy median and interquartile range per analyte; an analyte without them is marked as
having no published range and is reported but not scored. Assuming log-normal levels, the
log-scale SD is ``(ln q3 - ln q1) / 1.349`` (the IQR of a normal is 1.349 SD), and

    z = (ln concentration - ln median) / SD_log

A participant-visit's composite inflammation score is the mean z over its scored analytes;
a visit is *elevated* when the composite reaches ``threshold`` (default 1.645, i.e. above the
95th percentile of the healthy distribution). ``persistently_elevated`` is true when every
scored visit from ``from_day`` on (default day 365: 12 months and later, the horizon of the
seed study, Fong 2023) is elevated, and there is at least one.

The default table (package data) holds the CoLaus population medians and IQRs for IL-1b,
IL-6 and TNF-a (Marques-Vidal et al., PLoS ONE 2011; domain.md D2). Levels are
platform-dependent: a lab should supply its own table (``load_reference(path)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from immunorehab.errors import Problem, ReferenceTableError

__all__ = [
    "IQR_SD",
    "ReferenceTable",
    "composite_scores",
    "default_reference_path",
    "inflammation_profile",
    "load_reference",
    "persistently_elevated",
]

#: Width of the interquartile range of a standard normal distribution.
IQR_SD = 1.3489795003921634
DEFAULT_THRESHOLD = 1.645


def default_reference_path() -> Path:
    return Path(str(resources.files("immunorehab.cytokines") / "data" / "healthy_reference.csv"))


@dataclass(frozen=True, slots=True)
class ReferenceTable:
    """Healthy reference per analyte; ``frame`` adds ``log_median``, ``log_sd``, ``has_range``."""

    frame: pd.DataFrame
    source: str

    def has_range(self, analyte: str) -> bool:
        row = self._row(analyte)
        return row is not None and bool(row["has_range"])

    def _row(self, analyte: str) -> pd.Series | None:
        hit = self.frame[self.frame["analyte"].str.casefold() == analyte.casefold()]
        return None if hit.empty else hit.iloc[0]

    def z(self, analyte: str, concentration: float) -> float:
        """Log-scale z-score of ``concentration``; NaN when no range or no positive value."""
        row = self._row(analyte)
        if row is None or not row["has_range"] or not concentration > 0:
            return math.nan
        return float((math.log(concentration) - row["log_median"]) / row["log_sd"])


def _number(value: object, where: str, field: str, problems: list[Problem]) -> float:
    if value is None or (isinstance(value, str) and not value.strip()) or value != value:
        return math.nan
    try:
        out = float(str(value))
    except ValueError:
        problems.append(Problem(f"{where}, field {field}", f"expected a positive number, got {value!r}"))
        return math.nan
    if not out > 0:
        problems.append(Problem(f"{where}, field {field}", f"expected a positive number, got {value!r}"))
    return out


def load_reference(path: str | Path | None = None) -> ReferenceTable:
    """Read a healthy-reference table (default: the shipped one).

    Raises
    ------
    ReferenceTableError
        Missing columns, duplicate analytes, non-positive or unordered quartiles (all listed).
    """
    p = Path(path) if path is not None else default_reference_path()
    try:
        raw = pd.read_csv(p, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise ReferenceTableError(f"cannot read {p}", [Problem(str(p), str(exc))]) from None
    missing = [c for c in ("analyte", "unit", "median", "q1", "q3", "source") if c not in raw.columns]
    if missing:
        raise ReferenceTableError(
            f"{p}: not a reference table", [Problem(str(p), f"missing columns {missing}")]
        )
    problems: list[Problem] = []
    rows = []
    for i, rec in enumerate(raw.to_dict("records")):
        where = f"{p} row {i + 2} ({rec['analyte']})"
        med, q1, q3 = (_number(rec[k], where, k, problems) for k in ("median", "q1", "q3"))
        complete = all(v == v for v in (med, q1, q3))
        if complete and not q1 < med < q3:
            problems.append(Problem(where, f"expected q1 < median < q3, got {q1}, {med}, {q3}"))
        if complete and not str(rec["source"]).strip():
            problems.append(Problem(where, "a range needs its source"))
        rows.append({**rec, "median": med, "q1": q1, "q3": q3, "has_range": complete})
    frame = pd.DataFrame(rows)
    dup = frame["analyte"].str.casefold().duplicated()
    problems += [Problem(str(p), f"analyte {a} is listed twice") for a in frame.loc[dup, "analyte"]]
    if problems:
        raise ReferenceTableError(f"{p}: invalid reference table ({len(problems)} problems)", problems)
    frame["log_median"] = np.log(frame["median"])
    frame["log_sd"] = (np.log(frame["q3"]) - np.log(frame["q1"])) / IQR_SD
    return ReferenceTable(frame, str(p))


def inflammation_profile(
    concentrations: pd.DataFrame, reference: ReferenceTable, *, threshold: float = DEFAULT_THRESHOLD
) -> pd.DataFrame:
    """Per participant-visit-analyte: ``z``, ``above_reference`` (z >= threshold), ``has_range``.

    ``concentrations`` has ``participant, visit, analyte, concentration`` (flags optional);
    censored values (NaN) get no z.
    """
    out = concentrations.copy()
    out["has_range"] = [reference.has_range(a) for a in out["analyte"]]
    out["z"] = [reference.z(a, c) for a, c in zip(out["analyte"], out["concentration"], strict=True)]
    out["above_reference"] = out["z"] >= threshold
    return out


def composite_scores(profile: pd.DataFrame, *, threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """Per participant-visit: ``composite`` (mean z of scored analytes), ``n_scored``, ``elevated``."""
    scored = profile[profile["z"].notna()]
    g = scored.groupby(["participant", "visit"])["z"]
    out = pd.DataFrame({"composite": g.mean(), "n_scored": g.count()}).reset_index()
    out["elevated"] = out["composite"] >= threshold
    return out


def persistently_elevated(
    scores: pd.DataFrame, visit_days: Mapping[str, int], *, from_day: int = 365
) -> pd.DataFrame:
    """Per participant: ``persistently_elevated`` and the late visits it rests on.

    A participant is persistently elevated when at least one scored visit falls on or after
    ``from_day`` (protocol day of the visit) and every such visit is elevated.
    """
    late = scores[scores["visit"].map(lambda v: visit_days.get(v, -1) >= from_day)]
    rows = []
    for participant in sorted(scores["participant"].unique()):
        mine = late[late["participant"] == participant]
        rows.append(
            {
                "participant": participant,
                "late_visits": ",".join(mine["visit"]),
                "late_elevated": int(mine["elevated"].sum()),
                "persistently_elevated": bool(len(mine) > 0 and mine["elevated"].all()),
            }
        )
    return pd.DataFrame(
        rows, columns=["participant", "late_visits", "late_elevated", "persistently_elevated"]
    )
