"""The demo job (what `make demo` runs) on the embedded protocol."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from immunorehab.study.demo import run_demo


def test_demo_runs_the_whole_chain(tmp_path: Path) -> None:
    result = run_demo(tmp_path, n=60, seed=2025, today=dt.date(2026, 11, 22))
    assert result.enrolled == 60
    assert result.randomised == 60 - result.ineligible > 40
    assert result.balance.total == result.randomised
    assert result.allocation_check == "intact" and result.audit_check.startswith("intact")
    # every stratum of permuted blocks (max block 6) stays within 2 of perfect balance per arm
    for counts in result.balance.by_stratum.values():
        assert max(counts.values()) - min(counts.values()) <= 2
    people = pd.read_csv(tmp_path / "participants.csv")
    assert len(people) == 60 and "arm" in people.columns
    visits = pd.read_parquet(tmp_path / "visits.parquet")
    assert set(visits["visit_id"]) >= {"baseline", "week8"}
    again = run_demo(tmp_path, n=60, seed=2025, today=dt.date(2026, 11, 22))
    assert again.balance == result.balance  # reproducible and starts from a fresh database
