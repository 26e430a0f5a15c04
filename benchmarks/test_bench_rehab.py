"""Rehabilitation throughput: importing a site's session log, replaying the progression engine.

Import: 40 prescribed face-to-face participants x 16 synthetic sessions (640 rows, ~80 columns)
into a copy of a prepared SQLite study -- every value validated, each session prescribed by the
engine, 6 exercise rows per session, every row audited, one transaction. Yardstick: the same CSV
read by pandas and bulk-inserted with ``to_sql`` (no validation, no engine, no audit).
"""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from factories import person
from immunorehab.rehab.logbook import import_sessions
from immunorehab.rehab.progression import replay
from immunorehab.rehab.service import prescribe
from immunorehab.simulate.sessions import synthetic_sessions
from immunorehab.study.allocation import randomise
from immunorehab.study.participants import add_participant
from immunorehab.study.service import add_user, create_study
from immunorehab.study.store import Store
from immunorehab.study.visits import record_visit
from unit.rehab.rehab_factories import PHOSP_BASELINE, outcome, plan, programme, rehab_values

ROOT = Path(__file__).resolve().parents[1]
PHOSP = ROOT / "examples" / "protocols" / "phosp_r_immune.yaml"
R = dt.date(2026, 1, 12)
TODAY = dt.date(2026, 6, 1)
N_PEOPLE = 40
_counter = itertools.count()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """A study with N_PEOPLE prescribed face-to-face participants, and their sessions as CSV."""
    folder = tmp_path_factory.mktemp("rehab-bench")
    db = folder / "base.db"
    store, _ = create_study(f"sqlite:///{db}", PHOSP, admin="admin", seed=1)
    for name, role in (("coord", "coordinator"), ("physio1", "physio")):
        add_user(store, by="admin", username=name, role=role)
    rows, rng, people = [], np.random.default_rng(3), 0
    while people < N_PEOPLE:
        pid = add_participant(store, by="coord", values=person()).participant_id
        if randomise(store, by="coord", participant_id=pid, on=R).arm != "face_to_face":
            continue
        values = {**PHOSP_BASELINE, **rehab_values()}
        record_visit(
            store,
            by="physio1",
            participant_id=pid,
            visit_id="baseline",
            visit_date=R,
            values=values,
            today=TODAY,
        )
        view = prescribe(store, by="physio1", participant_id=pid, on=R, today=TODAY)
        log = synthetic_sessions(
            view.plan,
            view.programme,
            participant_id=pid,
            start=R + dt.timedelta(days=1),
            today=TODAY,
            rng=rng,
        )
        rows += log.rows
        people += 1
    store.dispose()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    csv = folder / "sessions.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return db, csv, len(rows)


@pytest.mark.benchmark(group="rehab-import-640")
def test_import_sessions_immunorehab(benchmark, prepared: tuple[Path, Path, int], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, csv, n = prepared

    def setup():  # type: ignore[no-untyped-def]
        copy = tmp_path / f"copy{next(_counter)}.db"
        shutil.copy(base, copy)
        return (Store.open(f"sqlite:///{copy}"),), {}

    def run(store: Store) -> None:
        assert len(import_sessions(store, by="physio1", path=csv, today=TODAY)) == n
        store.dispose()

    benchmark.pedantic(run, setup=setup, rounds=5)


@pytest.mark.benchmark(group="rehab-import-640")
def test_import_sessions_yardstick_pandas_to_sql(
    benchmark, prepared: tuple[Path, Path, int], tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Lower bound: the same CSV bulk-inserted with no validation, no engine and no audit trail."""
    _, csv, n = prepared

    def setup():  # type: ignore[no-untyped-def]
        return (sa.create_engine(f"sqlite:///{tmp_path / f'raw{next(_counter)}.db'}"),), {}

    def run(engine: sa.Engine) -> None:
        assert pd.read_csv(csv).to_sql("sessions", engine, index=False) == n
        engine.dispose()

    benchmark.pedantic(run, setup=setup, rounds=5)


@pytest.mark.benchmark(group="rehab-engine")
def test_replay_16_sessions(benchmark) -> None:  # type: ignore[no-untyped-def]
    """The progression engine over a whole programme (what `rehab next` / `explain` run per call)."""
    p, prog = plan(), programme()
    outcomes = []
    for number in range(1, 17):
        state = replay(p, prog, outcomes).state
        outcomes.append(outcome(state.doses, number, R + dt.timedelta(days=3 * number)))
    result = benchmark(replay, p, prog, outcomes)
    assert len(result.decisions) == 16
