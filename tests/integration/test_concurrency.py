"""Concurrent `immunorehab randomise` processes against SQLite and PostgreSQL.

Each call is a separate OS process (as at a multi-user site): every participant must
get exactly one allocation at distinct, gap-free sequence positions with the hash chain
intact, and racing calls for the same participant must give exactly one allocation.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from factories import person
from immunorehab.study.allocation import verify_allocations
from immunorehab.study.participants import add_participant

pytestmark = pytest.mark.slow


def _spawn(url: str, pid: str) -> subprocess.Popen[str]:
    env = {**os.environ, "IMMUNOREHAB_DATABASE_URL": url, "IMMUNOREHAB_USER": "coord"}
    return subprocess.Popen(
        [sys.executable, "-m", "immunorehab", "randomise", pid],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=240)
    return proc.returncode, out, err


def _allocations(study) -> list[tuple[int, str, str]]:
    with study.store.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text("SELECT sequence, participant_id, arm FROM allocation ORDER BY sequence")
            )
        ]


def test_twenty_concurrent_processes_get_distinct_gap_free_allocations(study) -> None:
    ids = [
        add_participant(
            study.store, by="coord", values=person(site="LEI" if i % 2 else "HAR", age_years=30 + 2 * i)
        ).participant_id
        for i in range(20)
    ]
    procs = [_spawn(study.url, pid) for pid in ids]
    results = [_finish(p) for p in procs]
    for code, out, err in results:
        assert code == 0, err
        assert "allocated to" in out
    rows = _allocations(study)
    assert [r[0] for r in rows] == list(range(1, 21))
    assert sorted(r[1] for r in rows) == sorted(ids)
    report = verify_allocations(study.store, by="admin")
    assert report.ok and report.checked == 20, report.problem


def test_ten_concurrent_calls_for_one_participant_give_exactly_one_allocation(study) -> None:
    pid = add_participant(study.store, by="coord", values=person()).participant_id
    procs = [_spawn(study.url, pid) for _ in range(10)]
    results = [_finish(p) for p in procs]
    winners = [r for r in results if r[0] == 0]
    losers = [r for r in results if r[0] != 0]
    assert len(winners) == 1
    assert len(losers) == 9
    for code, _out, err in losers:
        assert code == 1
        assert "already randomised" in err and "Traceback" not in err
    assert [r[1] for r in _allocations(study)] == [pid]
    assert verify_allocations(study.store, by="admin").ok
