"""Store throughput: import, randomise, verify; raw pandas.to_sql as the yardstick for import.

Run with `make bench`. Figures are recorded in benchmarks/README.md (medians and ratios).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from factories import person
from immunorehab.study.allocation import randomise, verify_allocations
from immunorehab.study.participants import import_participants
from immunorehab.study.randomisation import ArmSpec, permuted_block_arm
from immunorehab.study.service import add_user, create_study

ROOT = Path(__file__).resolve().parents[1]
PHOSP = ROOT / "examples" / "protocols" / "phosp_r_immune.yaml"
N_IMPORT = 1000
_counter = itertools.count()


def _people(n: int) -> pd.DataFrame:
    return pd.DataFrame([person(age_years=20 + i % 70, who_severity=4 + i % 5) for i in range(n)])


def _new_study(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / f's{next(_counter)}.db'}"
    store, _ = create_study(url, PHOSP, admin="admin", seed=1)
    add_user(store, by="admin", username="coord", role="coordinator")
    return store


@pytest.mark.benchmark(group="import-1000")
def test_import_1000_participants_immunorehab(benchmark, tmp_path: Path) -> None:
    csv = tmp_path / "people.csv"
    _people(N_IMPORT).to_csv(csv, index=False)

    def setup():  # type: ignore[no-untyped-def]
        return (_new_study(tmp_path),), {}

    def run(store) -> None:  # type: ignore[no-untyped-def]
        assert len(import_participants(store, by="coord", path=csv)) == N_IMPORT
        store.dispose()

    benchmark.pedantic(run, setup=setup, rounds=5)


@pytest.mark.benchmark(group="import-1000")
def test_import_1000_participants_yardstick_pandas_to_sql(benchmark, tmp_path: Path) -> None:
    """Lower bound: read the same CSV and bulk-insert it with no validation, IDs, eligibility or audit."""
    csv = tmp_path / "people.csv"
    _people(N_IMPORT).to_csv(csv, index=False)

    def setup():  # type: ignore[no-untyped-def]
        return (sa.create_engine(f"sqlite:///{tmp_path / f'raw{next(_counter)}.db'}"),), {}

    def run(engine) -> None:  # type: ignore[no-untyped-def]
        pd.read_csv(csv, dtype=str).to_sql("participant", engine, index=False)
        engine.dispose()

    benchmark.pedantic(run, setup=setup, rounds=5)


@pytest.mark.benchmark(group="randomise")
def test_randomise_one_participant_sqlite(benchmark, tmp_path: Path) -> None:
    store = _new_study(tmp_path)
    csv = tmp_path / "people.csv"
    _people(400).to_csv(csv, index=False)
    ids = iter(import_participants(store, by="coord", path=csv))
    benchmark.pedantic(lambda: randomise(store, by="coord", participant_id=next(ids)), rounds=300)
    store.dispose()


@pytest.mark.benchmark(group="verify")
def test_verify_chain_of_300_allocations(benchmark, tmp_path: Path) -> None:
    store = _new_study(tmp_path)
    csv = tmp_path / "people.csv"
    _people(300).to_csv(csv, index=False)
    for pid in import_participants(store, by="coord", path=csv):
        randomise(store, by="coord", participant_id=pid)
    report = benchmark(lambda: verify_allocations(store, by="admin"))
    assert report.ok and report.checked == 300
    store.dispose()


@pytest.mark.benchmark(group="block-lookup")
def test_permuted_block_arm_at_position_10000(benchmark) -> None:
    arms = [ArmSpec("a", 1), ArmSpec("b", 1), ArmSpec("c", 1)]
    benchmark(permuted_block_arm, seed=1, stratum="s", position=10_000, arms=arms, block_multiples=[1, 2])
