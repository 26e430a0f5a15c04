"""Enrolment, eligibility, all-or-nothing import, updates and withdrawal (store level)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from factories import person
from immunorehab.errors import DataValidationError, PermissionDenied, StudyError
from immunorehab.study.participants import (
    add_participant,
    import_participants,
    list_participants,
    update_participant,
    withdraw_participant,
)


def test_ids_are_site_code_plus_per_site_sequence(study) -> None:
    ids = [
        add_participant(study.store, by="coord", values=person(site=s)).participant_id
        for s in ("LEI", "LEI", "HAR", "lei")
    ]
    assert ids == ["LEI-0001", "LEI-0002", "HAR-0001", "LEI-0003"]


def test_eligibility_records_which_criterion_failed(study) -> None:
    p = add_participant(study.store, by="coord", values=person(hospitalised="no", days_since_infection=10))
    assert not p.eligible
    assert p.failed_criteria.split(",") == ["hospitalised", "post_covid_syndrome"]
    ok = add_participant(study.store, by="coord", values=person())
    assert ok.eligible and ok.failed_criteria == ""


def test_all_invalid_fields_are_reported_together(study) -> None:
    with pytest.raises(DataValidationError) as info:
        add_participant(
            study.store,
            by="coord",
            values=person(age_years="abc", sex="x", site="ZZZ", consent_date="2999-01-01"),
        )
    fields = {p.location.split("field ")[1] for p in info.value.problems}
    assert fields == {"age_years", "sex", "site", "consent_date"}
    assert list_participants(study.store, by="coord") == []


def test_only_enrolling_roles_may_add(study) -> None:
    for user in ("lab1", "assessor1", "physio1", "stats1"):
        with pytest.raises(PermissionDenied):
            add_participant(study.store, by=user, values=person())


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame([person(age_years=30 + i) for i in range(n)])


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_import_is_all_or_nothing_and_names_every_bad_row(study, tmp_path: Path, suffix: str) -> None:
    frame = _frame(40).astype(str)
    frame.loc[37, "age_years"] = "two hundred"
    frame.loc[38, "cmv_serostatus"] = "maybe"
    path = tmp_path / f"people{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)
    with pytest.raises(DataValidationError) as info:
        import_participants(study.store, by="coord", path=path)
    locations = [p.location for p in info.value.problems]
    header = 1 if suffix == ".csv" else 0
    assert locations == [
        f"{path.name} row {38 + header}, field age_years",
        f"{path.name} row {39 + header}, field cmv_serostatus",
    ]
    assert list_participants(study.store, by="coord") == []
    frame.loc[37, "age_years"] = "61"
    frame.loc[38, "cmv_serostatus"] = "negative"
    path.unlink()
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)
    ids = import_participants(study.store, by="coord", path=path)
    assert len(ids) == 40 and ids[-1] == "LEI-0040"


def test_import_refuses_identifying_columns(study, tmp_path: Path) -> None:
    frame = _frame(2)
    frame["name"] = ["A Person", "B Person"]
    frame["email"] = ["a@x.org", "b@x.org"]
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match="no names or contact details"):
        import_participants(study.store, by="coord", path=path)
    assert list_participants(study.store, by="coord") == []


def test_import_keeps_given_ids_and_rejects_duplicates(study, tmp_path: Path) -> None:
    frame = _frame(2)
    frame.insert(0, "participant_id", ["LEI-0100", "LEI-0100"])
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match="LEI-0100 already exists"):
        import_participants(study.store, by="coord", path=path)
    frame["participant_id"] = ["LEI-0100", "LEI-0101"]
    frame.to_csv(path, index=False)
    assert import_participants(study.store, by="coord", path=path) == ["LEI-0100", "LEI-0101"]
    assert add_participant(study.store, by="coord", values=person()).participant_id == "LEI-0102"


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00garbage", b'a,b\n1,2,3,4\n"unterminated'])
def test_corrupt_files_are_clear_errors(study, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataValidationError, match="bad.csv"):
        import_participants(study.store, by="coord", path=path)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(DataValidationError, match="bad.parquet"):
        import_participants(study.store, by="coord", path=bad)


def test_update_reevaluates_eligibility_and_withdrawal_keeps_data(study) -> None:
    pid = add_participant(study.store, by="coord", values=person(hospitalised="no")).participant_id
    changes = update_participant(
        study.store,
        by="coord",
        participant_id=pid,
        changes={"hospitalised": "yes"},
        reason="source document check",
    )
    assert changes == {"hospitalised": (False, True)}
    withdraw_participant(
        study.store, by="coord", participant_id=pid, reason="withdrew consent", on=dt.date(2026, 3, 1)
    )
    [view] = list_participants(study.store, by="coord")
    assert view.eligible and view.withdrawn_on == dt.date(2026, 3, 1)
    assert view.withdrawal_reason == "withdrew consent" and view.covariates["age_years"] == 55
    with pytest.raises(StudyError, match="already withdrawn"):
        withdraw_participant(study.store, by="coord", participant_id=pid, reason="again")
    with pytest.raises(StudyError, match="site is part of the participant ID"):
        update_participant(study.store, by="coord", participant_id=pid, changes={"site": "HAR"}, reason="x")
