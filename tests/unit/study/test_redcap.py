"""REDCap data dictionary: exact columns, one row per field, REDCap syntax, safe writing."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

from immunorehab.errors import ConfigError, ImmunorehabError, ProtocolError
from immunorehab.study.fields import COVARIATES
from immunorehab.study.protocol import Protocol, load_protocol
from immunorehab.study.redcap import (
    REDCAP_COLUMNS,
    redcap_choice_codes,
    redcap_data_dictionary,
    write_redcap_data_dictionary,
)

EXAMPLES = Path(__file__).parents[3] / "examples" / "protocols"
NAME = "Variable / Field Name"
HEADERS = [
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
]


@cache
def phosp() -> Protocol:
    return load_protocol(EXAMPLES / "phosp_r_immune.yaml")


@cache
def two_arm() -> Protocol:
    return load_protocol(EXAMPLES / "two_arm_minimisation.yaml")


def row(frame: pd.DataFrame, variable: str) -> dict[str, str]:
    match = frame[frame[NAME] == variable]
    assert len(match) == 1, f"{variable}: {len(match)} rows"
    return {str(k): str(v) for k, v in match.iloc[0].items()}


def with_ids(protocol: Protocol, *, visit_id: str | None = None, measure_id: str | None = None) -> Protocol:
    """A copy of ``protocol`` whose first visit (and its first measure) are renamed."""
    data = protocol.model_dump()
    data["analysis"] = None  # the analysis plan refers to the visits by their original ids
    if visit_id is not None:
        data["visits"][0]["id"] = visit_id
    if measure_id is not None:
        data["visits"][0]["measures"][0]["id"] = measure_id
    return Protocol.model_validate(data)


def test_exact_headers() -> None:
    frame = redcap_data_dictionary(phosp())
    assert list(frame.columns) == HEADERS
    assert list(REDCAP_COLUMNS) == HEADERS


@pytest.mark.parametrize("protocol", [phosp, two_arm], ids=["phosp", "two_arm"])
def test_one_row_per_record_id_covariate_and_measure(protocol: Callable[[], Protocol]) -> None:
    p = protocol()
    frame = redcap_data_dictionary(p)
    expected = (
        ["participant_id"]
        + list(COVARIATES)
        + [f"{visit.id}_{measure.id}" for visit in p.visits for measure in visit.measures]
    )
    assert frame[NAME].tolist() == expected
    assert frame["Form Name"].tolist() == ["enrolment"] * (1 + len(COVARIATES)) + [
        visit.id for visit in p.visits for _ in visit.measures
    ]


def test_record_id_is_first_text_field() -> None:
    first = redcap_data_dictionary(phosp()).iloc[0]
    assert (first[NAME], first["Form Name"], first["Field Type"]) == ("participant_id", "enrolment", "text")


def test_covariate_types() -> None:
    frame = redcap_data_dictionary(phosp())
    sex = row(frame, "sex")
    assert (sex["Field Type"], sex["Choices, Calculations, OR Slider Labels"]) == (
        "radio",
        "1, female | 2, male | 3, other",
    )
    age = row(frame, "age_years")
    assert (age["Field Type"], age["Text Validation Type OR Show Slider Number"]) == ("text", "integer")
    assert (age["Text Validation Min"], age["Text Validation Max"]) == ("0", "120")
    assert row(frame, "hospitalised")["Field Type"] == "yesno"
    consent = row(frame, "consent_date")
    assert (consent["Field Type"], consent["Text Validation Type OR Show Slider Number"]) == (
        "text",
        "date_ymd",
    )
    assert consent["Required Field?"] == ""  # optional while screening
    assert row(frame, "cmv_serostatus")["Choices, Calculations, OR Slider Labels"] == (
        "1, positive | 2, negative | 3, unknown"
    )
    site = row(frame, "site")
    assert site["Field Type"] == "radio"
    assert site["Choices, Calculations, OR Slider Labels"].startswith("1, LEI: Leicester")


def test_measure_rows() -> None:
    frame = redcap_data_dictionary(phosp())
    iswt = row(frame, "week8_iswt_distance_m")
    assert iswt["Form Name"] == "week8"
    assert iswt["Field Type"] == "text"
    assert iswt["Text Validation Type OR Show Slider Number"] == "integer"
    assert (iswt["Text Validation Min"], iswt["Text Validation Max"]) == ("0", "1500")
    assert iswt["Field Note"] == "m"
    assert iswt["Required Field?"] == "y"
    eq5d = row(frame, "baseline_eq5d5l_index")
    assert eq5d["Text Validation Type OR Show Slider Number"] == "number"
    assert (eq5d["Text Validation Min"], eq5d["Text Validation Max"]) == ("-0.6", "1")
    assert row(frame, "baseline_blood_drawn")["Field Type"] == "yesno"
    sample = row(frame, "baseline_blood_sample_type")
    assert sample["Field Type"] == "radio"
    assert sample["Choices, Calculations, OR Slider Labels"] == "1, whole_blood | 2, pbmc"
    assert sample["Required Field?"] == ""
    hours = row(frame, "month6_hours_since_exercise")
    assert (hours["Field Note"], hours["Text Validation Max"]) == ("h", "")


def test_first_field_of_each_form_has_a_section_header() -> None:
    frame = redcap_data_dictionary(phosp())
    headers = frame[frame["Section Header"] != ""]
    assert headers["Form Name"].tolist() == ["enrolment"] + [v.id for v in phosp().visits]
    assert "day 56" in row(frame, "week8_iswt_distance_m")["Section Header"]


def test_variable_and_form_names_follow_redcap_rules() -> None:
    frame = redcap_data_dictionary(phosp())
    pattern = re.compile(r"^[a-z][a-z0-9_]*$")
    for column in (NAME, "Form Name"):
        assert all(pattern.match(name) and len(name) <= 100 for name in frame[column])
    assert frame[NAME].is_unique
    assert all(isinstance(v, str) for v in frame.to_numpy().ravel())


@pytest.mark.parametrize(
    ("visit_id", "measure_id", "bad"),
    [
        ("week-8", None, "'week-8_iswt_distance_m'"),
        ("8weeks", None, "'8weeks'"),
        (None, "x" * 100, "'baseline_" + "x" * 20),
        (None, "eswt-time", "'baseline_eswt-time'"),
    ],
)
def test_impossible_names_raise(visit_id: str | None, measure_id: str | None, bad: str) -> None:
    protocol = with_ids(phosp(), visit_id=visit_id, measure_id=measure_id)
    with pytest.raises(ProtocolError) as info:
        redcap_data_dictionary(protocol)
    assert any(bad in p.location for p in info.value.problems)


def test_colliding_names_raise() -> None:
    # visit "baseline_iswt" + measure "distance_m" would equal "baseline" + "iswt_distance_m"
    data = phosp().model_dump()
    data["analysis"] = None  # the analysis plan refers to visit week8 by its id
    data["visits"][1]["id"] = "baseline_iswt"
    data["visits"][1]["measures"][0]["id"] = "distance_m"
    with pytest.raises(ProtocolError, match="REDCap") as info:
        redcap_data_dictionary(Protocol.model_validate(data))
    assert any("defined twice" in p.message for p in info.value.problems)


def test_choice_codes_map_back() -> None:
    codes = redcap_choice_codes(phosp())
    assert codes["sex"] == {"1": "female", "2": "male", "3": "other"}
    assert codes["cmv_serostatus"]["3"] == "unknown"
    assert codes["site"] == {"1": "LEI", "2": "HAR"}
    assert codes["hospitalised"] == {"1": True, "0": False}
    assert codes["week8_blood_sample_type"] == {"1": "whole_blood", "2": "pbmc"}
    assert codes["baseline_dsq_pem_present"] == {"1": True, "0": False}
    frame = redcap_data_dictionary(phosp())
    coded = set(frame.loc[frame["Field Type"].isin(["radio", "yesno"]), NAME])
    assert coded == set(codes)
    for variable, mapping in codes.items():  # codes agree with the dictionary's choices
        choices = row(frame, variable)["Choices, Calculations, OR Slider Labels"]
        if choices:
            assert [c.split(", ", 1)[0] for c in choices.split(" | ")] == list(mapping)


def test_write_csv_round_trips(tmp_path: Path) -> None:
    target = tmp_path / "dictionary.csv"
    assert write_redcap_data_dictionary(phosp(), target) == target
    back = pd.read_csv(target, dtype=str, keep_default_na=False)
    assert list(back.columns) == HEADERS
    pd.testing.assert_frame_equal(back, redcap_data_dictionary(phosp()), check_dtype=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dictionary.csv"]  # no temp files left


def test_write_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "dictionary.csv"
    target.write_text("keep me", encoding="utf-8")
    with pytest.raises(ConfigError, match="already exists") as info:
        write_redcap_data_dictionary(phosp(), target)
    assert isinstance(info.value, ImmunorehabError)
    assert target.read_text(encoding="utf-8") == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dictionary.csv"]
    write_redcap_data_dictionary(phosp(), target, overwrite=True)
    assert target.read_text(encoding="utf-8").startswith("Variable / Field Name,Form Name,")


def test_write_into_missing_directory_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        write_redcap_data_dictionary(phosp(), tmp_path / "nope" / "dictionary.csv")


def test_failed_build_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "dictionary.csv"
    with pytest.raises(ProtocolError):
        write_redcap_data_dictionary(with_ids(phosp(), visit_id="week-8"), target)
    assert list(tmp_path.iterdir()) == []
