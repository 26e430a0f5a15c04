"""Outcome change at week 8 against the minimal clinically important difference (pure).

Change = follow-up - baseline in the measure's units. Whether it is an improvement
depends on the measure's direction (domain.md B): higher ISWT, ESWT, 6MWT, sit-to-stand
repetitions, FACIT-Fatigue and EQ-5D are better; higher C19-YRS(m) symptom severity and
functional disability and a longer 5-repetition sit-to-stand time are worse. A change
reaches the MCID when the improvement (change signed by direction) is >= the MCID.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["MCIDS", "Direction", "Mcid", "OutcomeChange", "outcome_changes"]

Direction = Literal["higher_better", "lower_better"]


@dataclass(frozen=True, slots=True)
class Mcid:
    """A measure's MCID with direction and source (domain.md B)."""

    measure_id: str
    label: str
    mcid: float
    unit: str
    direction: Direction
    source: str


#: MCIDs of the protocol's outcome measures (domain.md section B; tags as there).
MCIDS: dict[str, Mcid] = {
    m.measure_id: m
    for m in (
        Mcid(
            "iswt_distance_m",
            "ISWT distance",
            47.5,
            "m",
            "higher_better",
            "Singh 2008, COPD 'slightly better' [V]",
        ),
        Mcid("eswt_time_s", "ESWT time", 159, "s", "higher_better", "Daynes 2025 meta-analysis, COPD [V]"),
        Mcid(
            "mwt6_distance_m",
            "6MWT distance",
            25,
            "m",
            "higher_better",
            "Daynes 2025 meta-analysis, respiratory [V]",
        ),
        Mcid("sts_1min_reps", "1-min sit-to-stand", 3, "reps", "higher_better", "Vaidya 2016, COPD PR [V]"),
        Mcid("sts_5rep_time_s", "5-rep sit-to-stand time", 1.7, "s", "lower_better", "5xSTS MCID [K]"),
        Mcid(
            "facit_fatigue",
            "FACIT-Fatigue",
            3,
            "points",
            "higher_better",
            "Cella 2002 [V]; higher = less fatigue",
        ),
        Mcid(
            "c19yrsm_symptom_severity",
            "C19-YRSm symptom severity",
            4,
            "points",
            "lower_better",
            "Smith et al. 2024 MCID (MID 2) [V]; higher = worse",
        ),
        Mcid(
            "c19yrsm_functional_disability",
            "C19-YRSm functional disability",
            4,
            "points",
            "lower_better",
            "Smith et al. 2024 MCID (MID 2) [V]; higher = worse",
        ),
        Mcid(
            "c19yrsm_overall_health",
            "C19-YRSm overall health",
            1,
            "points",
            "higher_better",
            "Smith et al. 2024 MID [V]; item anchored 0 = worst, 10 = best health [U: confirm direction]",
        ),
        Mcid(
            "eq5d5l_index",
            "EQ-5D-5L index",
            0.05,
            "",
            "higher_better",
            "MID about 0.03-0.07 [U]; midpoint used",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class OutcomeChange:
    """One measure's change from baseline; ``improvement`` is the change signed so that > 0 is better."""

    measure_id: str
    label: str
    baseline: float
    followup: float
    change: float
    improvement: float
    mcid: float | None
    unit: str
    direction: Direction | None
    reached_mcid: bool | None
    source: str | None


def outcome_changes(
    baseline: Mapping[str, float], followup: Mapping[str, float], *, mcids: Mapping[str, Mcid] = MCIDS
) -> list[OutcomeChange]:
    """Change from ``baseline`` to ``followup`` for every measure present in both.

    Measures without an MCID (e.g. EQ VAS) are reported with ``reached_mcid = None``.

    Examples
    --------
    >>> before, after = {"c19yrsm_symptom_severity": 14}, {"c19yrsm_symptom_severity": 9}
    >>> [c.reached_mcid for c in outcome_changes(before, after)]
    [True]
    """
    out = []
    for measure_id in (m for m in baseline if m in followup):
        before, after = float(baseline[measure_id]), float(followup[measure_id])
        change = after - before
        info = mcids.get(measure_id)
        if info is None:
            out.append(
                OutcomeChange(
                    measure_id, measure_id, before, after, change, change, None, "", None, None, None
                )
            )
            continue
        improvement = change if info.direction == "higher_better" else -change
        reached = improvement >= info.mcid - 1e-9
        out.append(
            OutcomeChange(
                measure_id,
                info.label,
                before,
                after,
                change,
                improvement,
                info.mcid,
                info.unit,
                info.direction,
                reached,
                info.source,
            )
        )
    return out
