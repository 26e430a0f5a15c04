"""Inflammation profile: log-scale z against the shipped CoLaus reference, composite, persistence."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from immunorehab.cytokines.profile import (
    IQR_SD,
    composite_scores,
    inflammation_profile,
    load_reference,
    persistently_elevated,
)
from immunorehab.errors import ReferenceTableError


def test_default_reference_has_sources_and_marks_missing_ranges() -> None:
    ref = load_reference()
    scored = set(ref.frame.loc[ref.frame["has_range"], "analyte"])
    assert scored == {"IL-6", "TNF-a", "IL-1b"}
    assert ref.frame.loc[ref.frame["has_range"], "source"].str.contains("CoLaus").all()
    unscored = ref.frame[~ref.frame["has_range"]]
    assert {"IP-10", "MCP-1", "MIP-1b", "IFN-g", "IL-10"} <= set(unscored["analyte"])
    assert unscored["note"].str.len().gt(10).all()


def test_z_scores_on_log_scale_match_colaus_quartiles() -> None:
    ref = load_reference()
    # CoLaus IL-6: median 1.47, IQR 0.71-3.53 pg/mL (Marques-Vidal 2011)
    assert ref.z("IL-6", 1.47) == pytest.approx(0.0)
    sd = (math.log(3.53) - math.log(0.71)) / IQR_SD
    assert ref.z("IL-6", 3.53) == pytest.approx((math.log(3.53) - math.log(1.47)) / sd)
    assert IQR_SD == pytest.approx(2 * 0.6744897501960817)
    assert math.isnan(ref.z("IP-10", 100.0)) and math.isnan(ref.z("IL-6", float("nan")))
    assert math.isnan(ref.z("IL-6", 0.0)) and math.isnan(ref.z("unknown", 5.0))


def concentrations(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    out = []
    for participant, visit, factor in rows:
        for analyte, median in (("IL-6", 1.47), ("TNF-a", 2.89), ("IL-1b", 1.17), ("IP-10", 100.0)):
            out.append(
                {
                    "participant": participant,
                    "visit": visit,
                    "analyte": analyte,
                    "concentration": median * factor,
                    "flag": "ok",
                }
            )
    return pd.DataFrame(out)


DAYS = {"baseline": 0, "week8": 56, "month6": 182, "month12": 365, "month24": 730}


def test_composite_and_persistence() -> None:
    data = concentrations(
        [
            ("A", "baseline", 8),
            ("A", "month12", 8),
            ("A", "month24", 8),  # persistently elevated
            ("B", "baseline", 8),
            ("B", "month12", 8),
            ("B", "month24", 1),  # resolved by 24 months
            ("C", "baseline", 1),
            ("C", "month12", 1),  # never
            ("D", "baseline", 8),
            ("D", "week8", 8),  # no late visit
        ]
    )
    prof = inflammation_profile(data, load_reference())
    assert prof.loc[prof["analyte"] == "IP-10", "z"].isna().all()  # no published range: not scored
    scores = composite_scores(prof)
    assert (scores["n_scored"] == 3).all()
    a_base = scores[(scores["participant"] == "A") & (scores["visit"] == "baseline")]["composite"].iloc[0]
    ref = load_reference()
    expected = sum(ref.z(a, m * 8) for a, m in (("IL-6", 1.47), ("TNF-a", 2.89), ("IL-1b", 1.17))) / 3
    assert a_base == pytest.approx(expected)
    persist = persistently_elevated(scores, DAYS).set_index("participant")
    assert persist["persistently_elevated"].to_dict() == {"A": True, "B": False, "C": False, "D": False}
    assert persist.loc["A", "late_visits"] == "month12,month24" and persist.loc["D", "late_visits"] == ""
    earlier = persistently_elevated(scores, DAYS, from_day=0).set_index("participant")
    assert bool(earlier.loc["D", "persistently_elevated"])


def test_reference_table_errors(tmp_path: Path) -> None:
    path = tmp_path / "ref.csv"
    path.write_text("analyte,unit,median,q1,q3,source\nIL-6,pg/mL,1,2,3,x\nIL-6,pg/mL,,,,\nTNF,pg/mL,-1,,,\n")
    with pytest.raises(ReferenceTableError) as info:
        load_reference(path)
    text = str(info.value)
    assert "q1 < median < q3" in text and "listed twice" in text and "positive number" in text
    path.write_text("analyte,median\nIL-6,1\n")
    with pytest.raises(ReferenceTableError, match="missing columns"):
        load_reference(path)
