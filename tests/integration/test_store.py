"""The store on SQLite and PostgreSQL: migrations, transactions, immutability, audit trail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from factories import person
from immunorehab.errors import EligibilityError, StoreError, StudyError
from immunorehab.study.allocation import randomise
from immunorehab.study.audit import verify_audit_chain
from immunorehab.study.models import Base
from immunorehab.study.participants import add_participant, update_participant, withdraw_participant
from immunorehab.study.store import Store
from immunorehab.study.visits import record_visit

MIGRATIONS = Path(__file__).resolve().parents[2] / "src" / "immunorehab" / "study" / "migrations"
TABLES = ["study", "app_user", "participant", "allocation", "visit_record", "measurement", "audit_event"]


def counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


def test_migrations_applied_on_open_and_reopen_is_idempotent(study) -> None:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    with study.store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == head
        names = set(sa.inspect(conn).get_table_names())
    assert set(Base.metadata.tables) <= names
    again = Store.open(study.url)
    assert counts(again) == counts(study.store)
    again.dispose()


def test_sqlite_has_foreign_keys_and_wal(tmp_path: Path) -> None:
    from immunorehab.study.service import create_study
    from testpaths import PHOSP

    store, _ = create_study(f"sqlite:///{tmp_path / 's.db'}", PHOSP, admin="admin")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
    store.dispose()


def test_opening_a_missing_sqlite_file_names_it_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no study database at .*nope\.db.*study create"):
        Store.open(f"sqlite:///{tmp_path / 'nope.db'}")
    assert not (tmp_path / "nope.db").exists()


def test_unreachable_postgres_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot open database"):
        Store.open("postgresql://nobody:pw@127.0.0.1:1/none?connect_timeout=2")


def test_second_study_in_same_database_refused(study) -> None:
    from immunorehab.study.service import create_study
    from testpaths import TWO_ARM

    with pytest.raises(StudyError, match="already holds study 'phosp-r-immune'"):
        create_study(study.url, TWO_ARM, admin="admin2")


def test_failed_command_leaves_database_exactly_as_it_was(study) -> None:
    add_participant(study.store, by="coord", values=person(hospitalised="no"))
    before = counts(study.store)
    with pytest.raises(EligibilityError):
        randomise(study.store, by="coord", participant_id="LEI-0001")
    assert counts(study.store) == before
    # An error after some rows were added inside one write: all of it rolls back.
    with pytest.raises(RuntimeError), study.store.write("coord") as session:
        from immunorehab.study.participants import _new_participant
        from immunorehab.study.service import get_protocol

        _new_participant(session, get_protocol(session), {"site": "LEI"}, "coord", None)
        raise RuntimeError("boom")
    assert counts(study.store) == before


@pytest.mark.parametrize("table", ["audit_event", "allocation"])
def test_audit_and_allocation_rows_cannot_be_altered_or_deleted(study, table: str) -> None:
    add_participant(study.store, by="coord", values=person())
    randomise(study.store, by="coord", participant_id="LEI-0001")
    for statement in (f"UPDATE {table} SET prev_hash = 'x'", f"DELETE FROM {table}"):
        with pytest.raises(sa.exc.DatabaseError, match="immutable"), study.store.engine.begin() as conn:
            conn.execute(sa.text(statement))
    assert counts(study.store)[table] > 0


def _drop_triggers(store: Store, table: str) -> None:
    with store.engine.begin() as conn:
        if store.dialect == "sqlite":
            conn.exec_driver_sql(f"DROP TRIGGER {table}_no_update")
            conn.exec_driver_sql(f"DROP TRIGGER {table}_no_delete")
        else:
            conn.exec_driver_sql(f"DROP TRIGGER {table}_no_change ON {table}")


def test_tampering_with_the_audit_trail_is_detected_at_the_first_altered_row(study) -> None:
    for _ in range(3):
        add_participant(study.store, by="coord", values=person())
    with study.store.read("admin") as s:
        assert verify_audit_chain(s).ok
    _drop_triggers(study.store, "audit_event")  # an attacker with raw database access
    with study.store.engine.begin() as conn:
        target = conn.execute(sa.text("SELECT id FROM audit_event ORDER BY id LIMIT 1 OFFSET 4")).scalar_one()
        conn.execute(sa.text("UPDATE audit_event SET username = 'mallory' WHERE id = :i"), {"i": target})
    with study.store.read("admin") as s:
        report = verify_audit_chain(s)
    assert report.broken_at == target and "altered" in (report.problem or "")
    with study.store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_event WHERE id = :i"), {"i": target})
    with study.store.read("admin") as s:
        report = verify_audit_chain(s)
    assert report.broken_at == target + 1 and "removed" in (report.problem or "")


def _events(store: Store) -> list[dict[str, object]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM audit_event ORDER BY id")).mappings().all()
    return [dict(r) for r in rows]


def test_every_write_leaves_an_audit_row_with_who_what_and_why(study) -> None:
    start = len(_events(study.store))
    add_participant(study.store, by="coord", values=person())
    update_participant(
        study.store,
        by="coord",
        participant_id="LEI-0001",
        changes={"age_years": "57"},
        reason="transcription error",
    )
    randomise(study.store, by="coord", participant_id="LEI-0001")
    record_visit(
        study.store,
        by="assessor1",
        participant_id="LEI-0001",
        visit_id="baseline",
        visit_date=__import__("datetime").date.today(),
        values=_baseline_values(),
    )
    withdraw_participant(study.store, by="coord", participant_id="LEI-0001", reason="moved away")
    events = _events(study.store)[start:]
    # Each created row is one 'create' event; each table's row count matches its events.
    created = [e for e in events if e["action"] == "create"]
    by_entity = {e: sum(1 for c in created if c["entity"] == e) for e in {c["entity"] for c in created}}
    c = counts(study.store)
    assert by_entity["participant"] == c["participant"] == 1
    assert by_entity["allocation"] == c["allocation"] == 1
    assert by_entity["visit"] == c["visit_record"] == 1
    assert by_entity["measurement"] == c["measurement"]
    updates = [e for e in events if e["action"] == "update"]
    assert [json.loads(str(u["changes_json"])) for u in updates] == [
        {"age_years": [55, 57]},
        {
            "withdrawal_reason": [None, "moved away"],
            "withdrawn_on": [None, __import__("datetime").date.today().isoformat()],
        },
    ]
    assert [(u["username"], u["reason"]) for u in updates] == [
        ("coord", "transcription error"),
        ("coord", "moved away"),
    ]
    assert {e["participant_id"] for e in events} == {"LEI-0001"}
    assert all(e["username"] in ("coord", "assessor1") for e in events)


def _baseline_values() -> dict[str, object]:
    from immunorehab.study.protocol import load_protocol
    from testpaths import PHOSP

    visit = load_protocol(PHOSP).visit("baseline")
    values: dict[str, object] = {}
    for m in visit.measures:
        if m.type in ("number", "integer"):
            values[m.id] = m.min if m.min is not None else 1
        elif m.type == "boolean":
            values[m.id] = "yes"
        elif m.type == "choice":
            values[m.id] = m.choices[0]
        elif m.type == "date":
            values[m.id] = "2026-01-01"
        else:
            values[m.id] = "x"
    return values


def test_changing_existing_data_without_a_reason_is_refused_and_nothing_changes(study) -> None:
    add_participant(study.store, by="coord", values=person())
    before = counts(study.store)
    from immunorehab.study.models import Participant

    with pytest.raises(StudyError, match="reason is required"), study.store.write("coord") as s:
        s.scalar(sa.select(Participant)).age_years = 70  # type: ignore[union-attr]
    assert counts(study.store) == before
