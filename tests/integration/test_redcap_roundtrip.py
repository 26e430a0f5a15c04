"""REDCap round trip through the CLI: export the data dictionary, import a raw REDCap export.

A site building its REDCap project from ``export redcap-dictionary`` gets back a raw
export (choice codes, yes/no as 1/0, dates as YYYY-MM-DD, plus REDCap's own
``redcap_event_name`` / ``<form>_complete`` columns); ``participant import --redcap``
must turn it back into the same participants, keeping the record IDs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from immunorehab.cli.main import run
from immunorehab.study.fields import COVARIATES
from immunorehab.study.participants import list_participants

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

#: The participants as immunorehab stores them (what the REDCap export must round-trip to).
PEOPLE: list[dict[str, Any]] = [
    {
        "participant_id": "LEI-0101",
        "site": "LEI",
        "consent_date": "2026-01-10",
        "age_years": 55,
        "sex": "female",
        "who_severity": 5,
        "hospitalised": True,
        "icu_admitted": False,
        "invasive_ventilation": False,
        "vaccination_doses": 3,
        "cmv_serostatus": "positive",
        "days_since_infection": 120,
    },
    {
        "participant_id": "HAR-0007",
        "site": "HAR",
        "consent_date": "2026-02-03",
        "age_years": 67,
        "sex": "male",
        "who_severity": 8,
        "hospitalised": True,
        "icu_admitted": True,
        "invasive_ventilation": True,
        "vaccination_doses": 2,
        "cmv_serostatus": "negative",
        "days_since_infection": 400,
    },
    {
        "participant_id": "LEI-0102",
        "site": "LEI",
        "consent_date": "2026-01-15",
        "age_years": 33,
        "sex": "other",
        "who_severity": 4,
        "hospitalised": False,
        "icu_admitted": False,
        "invasive_ventilation": False,
        "vaccination_doses": 0,
        "cmv_serostatus": "unknown",
        "days_since_infection": 90,
    },
]


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No debug mode, default user or database from the caller's shell."""
    for name in ("IMMUNOREHAB_DEBUG", "IMMUNOREHAB_USER", "IMMUNOREHAB_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


class Cli:
    def __init__(self, url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.url, self.capsys = url, capsys

    def __call__(self, *args: str, user: str = "coord") -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = run([*args, "--db", self.url, "--user", user])
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err


@pytest.fixture
def cli(study: Any, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(study.url, capsys)


def export_dictionary(cli: Cli, path: Path) -> pd.DataFrame:
    code, out, err = cli("export", "redcap-dictionary", str(path), user="lab1")
    assert (code, err) == (0, ""), err
    assert out == f"Wrote REDCap data dictionary to {path}\n"
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def choice_codes(dictionary: pd.DataFrame) -> dict[str, dict[str, str]]:
    """variable -> {value -> raw code}, read from the dictionary's choices column as REDCap would."""
    codes: dict[str, dict[str, str]] = {}
    for _, row in dictionary.iterrows():
        if row["Field Type"] != "radio":
            continue
        pairs = [item.split(", ", 1) for item in row["Choices, Calculations, OR Slider Labels"].split(" | ")]
        # site labels read "LEI: Leicester (...)"; other choices are the values themselves
        codes[row["Variable / Field Name"]] = {label.split(":")[0]: code for code, label in pairs}
    return codes


def redcap_export(dictionary: pd.DataFrame, people: list[dict[str, Any]]) -> pd.DataFrame:
    """``people`` as REDCap's raw CSV export of a project built from ``dictionary``."""
    codes = choice_codes(dictionary)
    types = dict(zip(dictionary["Variable / Field Name"], dictionary["Field Type"], strict=True))
    enrolment = list(dictionary.loc[dictionary["Form Name"] == "enrolment", "Variable / Field Name"])
    records = []
    for p in people:
        raw: dict[str, str] = {"participant_id": p["participant_id"], "redcap_event_name": "enrolment_arm_1"}
        for var in enrolment[1:]:
            value = p[var]
            if types[var] == "yesno":
                raw[var] = "1" if value else "0"
            elif types[var] == "radio":
                raw[var] = codes[var][value]
            else:
                raw[var] = str(value)
        raw["enrolment_complete"] = "2"
        # the visit forms come along in a whole-project export, still empty
        raw.update(baseline_iswt_distance_m="", baseline_blood_drawn="", baseline_complete="0")
        records.append(raw)
    return pd.DataFrame(records, dtype=str)


def test_data_dictionary(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "dictionary.csv"
    dictionary = export_dictionary(cli, path)
    assert list(dictionary.columns) == HEADERS
    assert path.read_text(encoding="utf-8").splitlines()[0].count(",") >= 17
    rows = dictionary.set_index("Variable / Field Name")
    assert dictionary.iloc[0, :4].tolist() == ["participant_id", "enrolment", "", "text"]
    enrolment = list(dictionary.loc[dictionary["Form Name"] == "enrolment", "Variable / Field Name"])
    assert enrolment == ["participant_id", *COVARIATES]
    assert rows.loc["sex", "Field Type"] == "radio"
    assert rows.loc["sex", "Choices, Calculations, OR Slider Labels"] == "1, female | 2, male | 3, other"
    assert rows.loc["cmv_serostatus", "Choices, Calculations, OR Slider Labels"] == (
        "1, positive | 2, negative | 3, unknown"
    )
    assert rows.loc["site", "Choices, Calculations, OR Slider Labels"].startswith("1, LEI: Leicester")
    assert rows.loc["hospitalised", "Field Type"] == "yesno"
    assert rows.loc["consent_date", "Text Validation Type OR Show Slider Number"] == "date_ymd"
    age = rows.loc["age_years"]
    assert (age["Text Validation Type OR Show Slider Number"], age["Text Validation Min"]) == ("integer", "0")
    assert age["Text Validation Max"] == "120" and age["Required Field?"] == "y"
    iswt = rows.loc["baseline_iswt_distance_m"]
    assert (iswt["Form Name"], iswt["Field Note"], iswt["Text Validation Max"]) == ("baseline", "m", "1500")
    assert rows.loc["week8_blood_sample_type", "Choices, Calculations, OR Slider Labels"] == (
        "1, whole_blood | 2, pbmc"
    )
    assert set(dictionary["Form Name"]) == {
        "enrolment",
        "baseline",
        "week8",
        "month3",
        "month6",
        "month12",
        "month24",
    }
    code, _, err = cli("export", "redcap-dictionary", str(path))
    assert code == 1 and "already exists" in err and "--overwrite" in err
    code, _, err = cli("export", "redcap-dictionary", str(path), "--overwrite")
    assert (code, err) == (0, "")


def test_redcap_export_imports_back(cli: Cli, study: Any, tmp_path: Path) -> None:
    dictionary = export_dictionary(cli, tmp_path / "dictionary.csv")
    raw = redcap_export(dictionary, PEOPLE)
    assert (
        raw.loc[0, "sex"] == "1" and raw.loc[1, "cmv_serostatus"] == "2" and raw.loc[2, "hospitalised"] == "0"
    )
    path = tmp_path / "redcap_export.csv"
    raw.to_csv(path, index=False)

    code, out, err = cli("participant", "import", str(path), "--redcap")
    assert (code, err) == (0, ""), err
    assert out == "Imported 3 participants (LEI-0101 .. LEI-0102).\n"

    export = tmp_path / "participants.csv"
    assert cli("export", "participants", str(export))[0] == 0
    frame = pd.read_csv(export, dtype=str, keep_default_na=False).set_index("participant_id")
    assert sorted(frame.index) == sorted(p["participant_id"] for p in PEOPLE)
    for p in PEOPLE:
        got = frame.loc[p["participant_id"]]
        for field, value in p.items():
            if field != "participant_id":
                assert got[field] == str(value), (p["participant_id"], field)
    assert frame.loc["LEI-0102", "eligible"] == "False"
    assert frame.loc["LEI-0102", "failed_criteria"] == "hospitalised"
    assert frame.loc["HAR-0007", "eligible"] == "True"

    # the imported participants are ordinary participants: randomised, and sequences continue
    code, out, _ = cli("randomise", "HAR-0007", "--date", "2026-02-10")
    assert code == 0 and out.startswith("HAR-0007 allocated to ")
    assert "stratum age_band=>=60|acute_severity=hdu_icu" in out
    code, _, err = cli("randomise", "LEI-0102")
    assert code == 1 and "hospitalised" in err
    for site, expected in (("LEI", "LEI-0103"), ("HAR", "HAR-0008")):
        code, out, _ = cli(
            "participant", "add", "--site", site, "--consent-date", "2026-01-10", "--age-years", "50",
            "--sex", "male", "--who-severity", "5", "--hospitalised", "yes", "--icu-admitted", "no",
            "--invasive-ventilation", "no", "--vaccination-doses", "2", "--cmv-serostatus", "negative",
            "--days-since-infection", "100",
        )  # fmt: skip
        assert (code, out) == (0, f"Enrolled {expected}: eligible\n")

    # importing the same export again is refused for every record, and changes nothing
    code, _, err = cli("participant", "import", str(path), "--redcap")
    assert code == 1
    for pid in ("LEI-0101", "HAR-0007", "LEI-0102"):
        assert f"{pid} already exists" in err
    assert len(list_participants(study.store, by="coord")) == 5


def test_redcap_export_without_flag_or_with_bad_codes_imports_nothing(
    cli: Cli, study: Any, tmp_path: Path
) -> None:
    dictionary = export_dictionary(cli, tmp_path / "dictionary.csv")
    raw = redcap_export(dictionary, PEOPLE)
    path = tmp_path / "redcap_export.csv"
    raw.to_csv(path, index=False)
    # without --redcap the codes are not values and REDCap's columns are not participant fields
    code, _, err = cli("participant", "import", str(path))
    assert code == 1 and err.startswith("Error: ")
    assert "column 'redcap_event_name'" in err and "row 2, field sex" in err and "got '1'" in err

    raw.loc[1, "sex"] = "7"  # no such choice code
    raw.loc[2, "icu_admitted"] = "2"
    raw.to_csv(path, index=False)
    code, _, err = cli("participant", "import", str(path), "--redcap")
    assert code == 1
    problems = [line for line in err.splitlines() if line.startswith("  - ")]
    assert len(problems) == 2
    assert "redcap_export.csv row 3, field sex" in problems[0] and "'7'" in problems[0]
    assert "redcap_export.csv row 4, field icu_admitted" in problems[1]
    assert list_participants(study.store, by="coord") == []


def test_redcap_import_of_empty_export(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("participant_id,redcap_event_name,site,enrolment_complete\n", encoding="utf-8")
    code, out, err = cli("participant", "import", str(path), "--redcap")
    assert code == 1 and out == ""
    assert err == f"Error: {path}: no rows to import\n"
    code, _, err = cli("participant", "import", str(tmp_path / "missing.csv"), "--redcap")
    assert code == 1 and "file not found" in err and "Traceback" not in err
