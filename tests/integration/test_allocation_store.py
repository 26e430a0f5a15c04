"""Randomisation inside the store: refusal rules, reproducibility, balance, tamper evidence."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factories import person
from immunorehab.errors import AlreadyRandomised, EligibilityError, PermissionDenied
from immunorehab.study.allocation import allocation_balance, randomise, verify_allocations
from immunorehab.study.participants import add_participant, withdraw_participant
from immunorehab.study.protocol import load_protocol
from immunorehab.study.randomisation import ArmSpec, block_sequence
from immunorehab.study.service import add_user, create_study
from testpaths import PHOSP, TWO_ARM


def _enrol(store, n: int, **overrides) -> list[str]:  # type: ignore[no-untyped-def]
    return [add_participant(store, by="coord", values=person(**overrides)).participant_id for _ in range(n)]


def test_refusals_name_the_reason(study) -> None:
    ok, inelig, unconsented, gone = (
        _enrol(study.store, 1)[0],
        _enrol(study.store, 1, hospitalised="no")[0],
        _enrol(study.store, 1, consent_date="")[0],
        _enrol(study.store, 1)[0],
    )
    withdraw_participant(study.store, by="coord", participant_id=gone, reason="lost to follow-up")
    randomise(study.store, by="coord", participant_id=ok)
    with pytest.raises(AlreadyRandomised, match=f"{ok} was already randomised"):
        randomise(study.store, by="coord", participant_id=ok)
    with pytest.raises(EligibilityError, match="not eligible: fails hospitalised"):
        randomise(study.store, by="coord", participant_id=inelig)
    with pytest.raises(EligibilityError, match="no consent date"):
        randomise(study.store, by="coord", participant_id=unconsented)
    with pytest.raises(EligibilityError, match="withdrawn .*lost to follow-up"):
        randomise(study.store, by="coord", participant_id=gone)
    for user in ("lab1", "assessor1", "physio1", "stats1"):
        with pytest.raises(PermissionDenied, match="may not randomise"):
            randomise(study.store, by=user, participant_id=gone)
    with study.store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM allocation")).scalar_one() == 1


def _arms_for(url: str, seed: int, protocol: Path = PHOSP, n: int = 24) -> list[str]:
    store, _ = create_study(url, protocol, admin="admin", seed=seed)
    add_user(store, by="admin", username="coord", role="coordinator")
    ids = [
        add_participant(
            store,
            by="coord",
            values=person(
                age_years=30 + (i * 7) % 50,
                who_severity=4 + i % 4,
                cmv_serostatus=["positive", "negative"][i % 2],
            ),
        ).participant_id
        for i in range(n)
    ]
    arms = [randomise(store, by="coord", participant_id=i).arm for i in ids]
    store.dispose()
    return arms


@pytest.mark.parametrize("protocol", [PHOSP, TWO_ARM], ids=["blocks", "minimisation"])
def test_same_seed_and_order_give_same_allocations(tmp_path: Path, protocol: Path) -> None:
    a = _arms_for(f"sqlite:///{tmp_path / 'a.db'}", 7, protocol)
    b = _arms_for(f"sqlite:///{tmp_path / 'b.db'}", 7, protocol)
    c = _arms_for(f"sqlite:///{tmp_path / 'c.db'}", 8, protocol)
    assert a == b
    assert a != c


def test_postgres_and_sqlite_allocate_identically(tmp_path: Path, pg_url: str) -> None:
    assert _arms_for(f"sqlite:///{tmp_path / 'a.db'}", 99) == _arms_for(pg_url, 99)


def test_block_balance_exact_at_block_ends_per_stratum(study) -> None:
    protocol = load_protocol(PHOSP)
    young = _enrol(study.store, 30, age_years=40)
    old = _enrol(study.store, 30, age_years=70)
    for a, b in zip(young, old, strict=True):  # interleave the two strata
        randomise(study.store, by="coord", participant_id=a)
        randomise(study.store, by="coord", participant_id=b)
    with study.store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT stratum, arm FROM allocation ORDER BY sequence")).all()
    arms_spec = [ArmSpec(a.id, a.ratio) for a in protocol.arms]
    by_stratum: dict[str, list[str]] = {}
    for stratum, arm in rows:
        by_stratum.setdefault(stratum, []).append(arm)
    assert len(by_stratum) == 2
    for stratum, arms in by_stratum.items():
        blocks = block_sequence(
            seed=12345,
            stratum=stratum,
            arms=arms_spec,
            block_multiples=protocol.randomisation.block_multiples,
            n=len(arms),
        )  # type: ignore[union-attr]
        # The store followed the concealed sequence exactly ...
        assert arms == [a for b in blocks for a in b.arms][: len(arms)]
        # ... so at every block end each arm has exactly the same count.
        end = 0
        for block in blocks:
            end += block.size
            if end > len(arms):
                break
            counts = Counter(arms[:end])
            assert counts["face_to_face"] == counts["remote"] == counts["usual_care"] == end // 3
        assert len({b.size for b in blocks}) > 1  # block sizes vary
    report = allocation_balance(study.store, by="stats1")
    assert report.total == 60 and set(report.by_stratum) == set(by_stratum)


def test_allocation_chain_detects_tampering(study) -> None:
    ids = _enrol(study.store, 6)
    for pid in ids:
        randomise(study.store, by="coord", participant_id=pid)
    assert verify_allocations(study.store, by="admin").ok
    with study.store.engine.begin() as conn:
        if study.store.dialect == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER allocation_no_update")
        else:
            conn.exec_driver_sql("DROP TRIGGER allocation_no_change ON allocation")
    # Swap arm of sequence 4 and re-hash it consistently: the replay from the seed still catches it.
    from immunorehab.study.allocation import _payload
    from immunorehab.study.hashing import chain_hash
    from immunorehab.study.models import Allocation

    with sa.orm.Session(study.store.engine) as s:
        row = s.scalar(sa.select(Allocation).where(Allocation.sequence == 4))
        assert row is not None
        row.arm = next(a for a in ("face_to_face", "remote", "usual_care") if a != row.arm)
        row.hash = chain_hash(row.prev_hash, _payload(row))
        s.commit()
    report = verify_allocations(study.store, by="admin")
    assert report.broken_sequence == 4
    assert "concealed sequence" in (report.problem or "") or "link" in (report.problem or "")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ages=st.lists(st.integers(18, 90), min_size=6, max_size=30), seed=st.integers(0, 2**40))
def test_store_allocations_replay_and_stay_balanced(tmp_path_factory, ages: list[int], seed: int) -> None:
    """Invariant: whatever the enrolment order, the chain verifies, sequence is gap-free and
    each stratum's arm counts never differ by more than the largest block allows."""
    url = f"sqlite:///{tmp_path_factory.mktemp('h') / 'h.db'}"
    store, _ = create_study(url, PHOSP, admin="admin", seed=seed)
    add_user(store, by="admin", username="coord", role="coordinator")
    for age in ages:
        pid = add_participant(store, by="coord", values=person(age_years=age)).participant_id
        randomise(store, by="coord", participant_id=pid, on=dt.date(2026, 2, 1))
    report = verify_allocations(store, by="admin")
    assert report.ok and report.checked == len(ages)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT sequence, stratum, arm, levels_json FROM allocation ORDER BY sequence")
        ).all()
    assert [r[0] for r in rows] == list(range(1, len(ages) + 1))
    per: dict[str, Counter[str]] = {}
    for _, stratum, arm, levels in rows:
        per.setdefault(stratum, Counter())[arm] += 1
        assert json.loads(levels)["age_band"] in stratum
        counts = [per[stratum][a] for a in ("face_to_face", "remote", "usual_care")]
        assert max(counts) - min(counts) <= 2  # max block multiple (2) x ratio (1)
    store.dispose()
