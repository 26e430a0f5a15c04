"""Concealed, tamper-evident randomisation of participants, inside the store.

The allocation for the next participant is computed from the study's concealed seed
and the enrolment order (stratified permuted blocks or minimisation, as the protocol
says), inside one serialised write transaction, so concurrent requests from many
processes still get distinct, gap-free sequence numbers. Each allocation row holds the
SHA-256 of its content and of the previous row: :func:`verify_allocations` recomputes
the chain *and* replays the algorithm from the seed, naming the first broken link.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from immunorehab.errors import AlreadyRandomised, EligibilityError, ProtocolError, StudyError
from immunorehab.study.hashing import GENESIS, chain_hash
from immunorehab.study.models import Allocation
from immunorehab.study.participants import get_participant
from immunorehab.study.protocol import MinimisationSettings, PermutedBlocksSettings, Protocol
from immunorehab.study.randomisation import ArmSpec, minimisation_arm, permuted_block_arm
from immunorehab.study.service import actor_of, get_protocol, get_study, now_utc
from immunorehab.study.store import Store

__all__ = [
    "AllocationResult",
    "BalanceReport",
    "VerifyReport",
    "allocation_balance",
    "randomise",
    "verify_allocations",
]

RANDOMISERS = ("admin", "coordinator")
UNBLINDED = ("admin", "coordinator", "physio", "statistician")


@dataclass(frozen=True, slots=True)
class AllocationResult:
    participant_id: str
    arm: str
    arm_label: str
    sequence: int
    stratum: str
    allocated_on: dt.date


def _arms(protocol: Protocol) -> list[ArmSpec]:
    return [ArmSpec(a.id, a.ratio) for a in protocol.arms]


def _choose_arm(
    protocol: Protocol,
    seed: int,
    sequence: int,
    stratum: str,
    position: int,
    levels: dict[str, str],
    history: list[tuple[dict[str, str], str]],
) -> tuple[str, dict[str, Any]]:
    settings = protocol.randomisation
    if isinstance(settings, MinimisationSettings):
        decision = minimisation_arm(
            seed=seed,
            sequence=sequence - 1,
            arms=_arms(protocol),
            levels=levels,
            history=history,
            weights={f.name: settings.weights.get(f.name, 1.0) for f in protocol.stratification},
            probability=settings.probability,
            imbalance=settings.imbalance,
        )
        detail = {
            "method": "minimisation",
            "scores": decision.scores,
            "minimising_arms": list(decision.minimising_arms),
            "random_draw": decision.random_draw,
        }
        return decision.arm, detail
    if not isinstance(settings, PermutedBlocksSettings):
        raise StudyError(f"study {protocol.study.id!r} has no randomisation method (method: none)")
    arm = permuted_block_arm(
        seed=seed,
        stratum=stratum,
        position=position,
        arms=_arms(protocol),
        block_multiples=settings.block_multiples,
    )
    return arm, {"method": "permuted_blocks"}


def _payload(a: Allocation) -> dict[str, Any]:
    return {
        "sequence": a.sequence,
        "participant_id": a.participant_id,
        "arm": a.arm,
        "stratum": a.stratum,
        "stratum_position": a.stratum_position,
        "levels": json.loads(a.levels_json),
        "detail": json.loads(a.detail_json),
        "allocated_on": a.allocated_on,
        "allocated_at": a.allocated_at,
        "allocated_by": a.allocated_by,
    }


def _history(session: Session) -> list[tuple[dict[str, str], str]]:
    rows = session.execute(select(Allocation.levels_json, Allocation.arm).order_by(Allocation.sequence))
    return [(json.loads(levels), arm) for levels, arm in rows]


def randomise(store: Store, *, by: str, participant_id: str, on: dt.date | None = None) -> AllocationResult:
    """Allocate ``participant_id`` to an arm; refuses anyone ineligible, unconsented, withdrawn or done.

    Raises
    ------
    EligibilityError, AlreadyRandomised, PermissionDenied, NotFoundError
    """
    on = on or dt.date.today()
    with store.write(by) as session:
        actor_of(session).require(*RANDOMISERS, action="randomise participants")
        study = get_study(session)
        protocol = get_protocol(session)
        if not protocol.randomised:
            raise StudyError(
                f"study {protocol.study.id!r} is a cohort (design: cohort): nobody is randomised; "
                "record each participant's visits directly (baseline first)"
            )
        person = get_participant(session, participant_id)
        pid = person.participant_id
        if person.allocation is not None:
            raise AlreadyRandomised(
                f"{pid} was already randomised on {person.allocation.allocated_on} "
                f"(sequence {person.allocation.sequence}); a participant is randomised at most once"
            )
        if person.withdrawn_on is not None:
            raise EligibilityError(
                f"{pid} cannot be randomised: withdrawn on {person.withdrawn_on} ({person.withdrawal_reason})"
            )
        if person.consent_date is None:
            raise EligibilityError(
                f"{pid} cannot be randomised: no consent date recorded "
                "(record it with `participant update --set consent_date=YYYY-MM-DD`)"
            )
        if person.consent_date > on:
            raise EligibilityError(f"{pid} cannot be randomised on {on}: consent dated {person.consent_date}")
        failed = protocol.failed_criteria(person.covariates())
        if failed:
            reasons = "; ".join(f"{c.id} ({c.description})" for c in failed)
            raise EligibilityError(f"{pid} cannot be randomised: not eligible: fails {reasons}")
        try:
            levels = protocol.stratum_of(person.covariates())
        except ProtocolError as exc:
            raise EligibilityError(f"{pid} cannot be stratified: {exc}") from exc
        stratum = protocol.stratum_key(person.covariates())
        sequence = (session.scalar(select(func.max(Allocation.sequence))) or 0) + 1
        position = session.scalar(select(func.count(Allocation.id)).where(Allocation.stratum == stratum)) or 0
        arm, detail = _choose_arm(
            protocol, study.seed, sequence, stratum, position, levels, _history(session)
        )
        prev = (
            session.scalar(select(Allocation.hash).order_by(Allocation.sequence.desc()).limit(1)) or GENESIS
        )
        row = Allocation(
            sequence=sequence,
            participant_pk=person.id,
            participant_id=pid,
            arm=arm,
            stratum=stratum,
            stratum_position=position,
            levels_json=json.dumps(levels, sort_keys=True),
            detail_json=json.dumps(detail, sort_keys=True),
            allocated_on=on,
            allocated_at=now_utc(),
            allocated_by=by,
            prev_hash=prev,
            hash="",
        )
        row.hash = chain_hash(prev, _payload(row))
        session.add(row)
        return AllocationResult(pid, arm, protocol.arm(arm).label, sequence, stratum, on)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    checked: int
    problem: str | None = None
    broken_sequence: int | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_allocations(store: Store, *, by: str) -> VerifyReport:
    """Recompute the allocation hash chain and replay the algorithm from the seed."""
    with store.read(by) as session:
        study = get_study(session)
        protocol = get_protocol(session)
        rows = list(session.scalars(select(Allocation).order_by(Allocation.sequence)))
        prev = GENESIS
        per_stratum: Counter[str] = Counter()
        history: list[tuple[dict[str, str], str]] = []
        for expected_seq, row in enumerate(rows, start=1):
            broken = partial(_broken, expected_seq, row)
            if row.sequence != expected_seq:
                return broken(f"expected sequence {expected_seq}: an allocation is missing")
            if row.prev_hash != prev:
                return broken("does not link to the allocation before it (one was removed or replaced)")
            if chain_hash(prev, _payload(row)) != row.hash:
                return broken("content does not match its hash (the row was altered)")
            levels = json.loads(row.levels_json)
            if row.stratum_position != per_stratum[row.stratum]:
                return broken(f"stratum position {row.stratum_position}, expected {per_stratum[row.stratum]}")
            arm, _ = _choose_arm(
                protocol, study.seed, row.sequence, row.stratum, row.stratum_position, levels, history
            )
            if arm != row.arm:
                return broken("arm differs from the concealed sequence (allocation was changed or forged)")
            per_stratum[row.stratum] += 1
            history.append((levels, row.arm))
            prev = row.hash
        return VerifyReport(len(rows))


def _broken(checked: int, row: Allocation, msg: str) -> VerifyReport:
    return VerifyReport(checked, f"sequence {row.sequence} ({row.participant_id}): {msg}", row.sequence)


@dataclass(frozen=True, slots=True)
class BalanceReport:
    arms: tuple[str, ...]
    overall: dict[str, int]
    by_stratum: dict[str, dict[str, int]]
    by_factor_level: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.overall.values())


def allocation_balance(store: Store, *, by: str) -> BalanceReport:
    """Counts per arm overall, per stratum, and per factor level (unblinded roles only)."""
    with store.read(by) as session:
        actor_of(session).require(*UNBLINDED, action="see allocation balance")
        protocol = get_protocol(session)
        arms = tuple(a.id for a in protocol.arms)
        overall = dict.fromkeys(arms, 0)
        strata: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(arms, 0))
        factors: dict[str, dict[str, dict[str, int]]] = defaultdict(
            lambda: defaultdict(lambda: dict.fromkeys(arms, 0))
        )
        for stratum, levels_json, arm in session.execute(
            select(Allocation.stratum, Allocation.levels_json, Allocation.arm).order_by(Allocation.sequence)
        ):
            overall[arm] += 1
            strata[stratum or "(unstratified)"][arm] += 1
            for factor, level in json.loads(levels_json).items():
                factors[factor][level][arm] += 1
        return BalanceReport(
            arms,
            overall,
            dict(sorted(strata.items())),
            {f: dict(sorted(levels.items())) for f, levels in factors.items()},
        )
