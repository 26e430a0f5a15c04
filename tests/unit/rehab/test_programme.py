"""Programme files: shipped ones are valid; a bad file's problems are all reported, with key paths."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from immunorehab.errors import ProgrammeError
from immunorehab.rehab.programme import default_programme_paths, load_programme, parse_programme
from unit.rehab.rehab_factories import F2F, REMOTE, REPO

RAW: dict[str, Any] = yaml.safe_load(F2F.read_text())


def _parse(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ProgrammeError) as info:
        parse_programme(yaml.safe_dump(data), "p.yaml")
    return [str(p) for p in info.value.problems]


def _with(path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(RAW)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def test_shipped_programmes_are_valid_and_packaged_unchanged() -> None:
    f2f, remote = load_programme(F2F), load_programme(REMOTE)
    assert f2f.sessions_total == 16 and remote.sessions_total == 16
    assert f2f.programme.arms == ["face_to_face"] and remote.programme.arms == ["remote"]
    assert f2f.programme.delivery == "supervised" and remote.programme.delivery == "remote"
    assert f2f.exercise_ids()[:2] == ["walking", "cycling"] and "cycling" not in remote.exercise_ids()
    assert f2f.heart_rate is not None and remote.heart_rate is None
    packaged = {p.name: p for p in default_programme_paths()}
    for example in (F2F, REMOTE):
        assert packaged[example.name].read_bytes() == example.read_bytes()


def test_shipped_constants_are_the_cited_ones() -> None:
    p = load_programme(F2F)
    walking = p.aerobic.walking
    assert (walking.vo2peak_equation.intercept, walking.vo2peak_equation.slope) == (4.19, 0.025)  # Singh 1994
    assert (walking.borg_dyspnoea_target.low, walking.borg_dyspnoea_target.high) == (3, 4)  # Patel 2021
    assert walking.target_minutes == 30
    assert p.resistance.strength.start_fraction_1rm == 0.6  # Harefield ~60% 1RM
    assert (p.resistance.strength.rpe_target.low, p.resistance.strength.rpe_target.high) == (13, 15)
    assert p.safety.spo2_floor_pct == 88 and p.safety.hr_limit_fraction_of_max == 0.85
    assert (p.pem.dsq_min_frequency, p.pem.dsq_min_severity) == (2, 2)
    assert p.schedule.completer_min_fraction == 0.75
    assert [t.week for t in p.education] == list(range(1, 9))


def test_sha_ignores_layout() -> None:
    text = F2F.read_text()
    assert parse_programme(text).sha256() == parse_programme(yaml.safe_dump(RAW)).sha256()


@pytest.mark.parametrize(
    ("data", "location", "message"),
    [
        (_with(["schedule", "weekz"], 8), "p.yaml: schedule.weekz", "unknown key 'weekz'"),
        (_with(["schedule", "weeks"], 0), "p.yaml: schedule.weeks", "must be an integer >= 1"),
        (
            _with(["aerobic", "walking", "standard", "start_fraction"], 1.5),
            "aerobic.walking.standard.start_fraction",
            "<= 1, got 1.5",
        ),
        (
            _with(["aerobic", "cycling", "standard", "start_watts"], "20"),
            "aerobic.cycling.standard.start_watts",
            "got '20'",
        ),
        (
            _with(["aerobic", "walking", "method"], "guess"),
            "aerobic.walking.method",
            "one of 'singh_vo2peak_fraction'",
        ),
        (_with(["safety", "stop_on", 0], "sneezing"), "safety.stop_on[0]", "got 'sneezing'"),
        (
            _with(["resistance", "strength", "sets"], {"low": 4, "high": 2}),
            "resistance.strength.sets.low",
            "must be <= high",
        ),
        (
            _with(["aerobic", "walking", "pacing", "minutes_step"], 5),
            "aerobic.walking.pacing.minutes_step",
            "pacing starts lower",
        ),
        (
            _with(["progression", "pacing", "min_days_between_sessions"], 1),
            "progression.pacing.min_days_between_sessions",
            "pacing is slower",
        ),
        (_with(["education", 0, "week"], 9), "education[0].week", "within the 8-week programme"),
        (
            _with(["aerobic", "walking", "standard", "minutes_step"], 1),
            "aerobic.walking.standard.minutes_step",
            "cannot build from 10 to 30 min",
        ),
        (
            _with(["resistance", "exercises", 1, "id"], "leg_press"),
            "resistance.exercises[1].id",
            "duplicate exercise id",
        ),
        (_with(["heart_rate", "band"], {"low": 0.7, "high": 0.5}), "heart_rate.band.low", "must be <= high"),
        (
            _with(["session"], [{"block": "aerobic", "description": "x"}]),
            "p.yaml: session",
            "'resistance' block",
        ),
    ],
)
def test_each_problem_has_a_key_path(data: dict[str, Any], location: str, message: str) -> None:
    problems = _parse(data)
    assert any(location in p and message in p for p in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    data = _with(["schedule", "weekz"], 3)
    data["aerobic"]["walking"]["standard"]["start_fraction"] = 1.5
    data["resistance"]["strength"]["sets"] = {"low": 4, "high": 2}
    data["progression"]["pacing"]["advance_after_sessions"] = 0
    data["education"][0]["week"] = 12
    data["safety"]["stop_on"].append("sneezing")
    problems = _parse(data)
    assert len(problems) == 6
    for where in (
        "schedule.weekz",
        "aerobic.walking.standard.start_fraction",
        "resistance.strength.sets.low",
        "progression.pacing.advance_after_sessions",
        "education[0].week",
        "safety.stop_on[10]",
    ):
        assert any(where in p for p in problems), (where, problems)


def test_missing_section_and_not_a_mapping() -> None:
    data = copy.deepcopy(RAW)
    del data["pem"]
    assert any("p.yaml: pem: required key is missing" in p for p in _parse(data))
    with pytest.raises(ProgrammeError, match="not a programme"):
        parse_programme("- a list\n", "p.yaml")
    with pytest.raises(ProgrammeError, match="not a programme"):
        parse_programme("", "p.yaml")


def test_yaml_errors_name_line_and_duplicate_keys(tmp_path: Path) -> None:
    with pytest.raises(ProgrammeError) as info:
        parse_programme("schedule:\n  weeks: 8\n  weeks: 9\n", "dup.yaml")
    assert "duplicate key 'weeks'" in str(info.value) and "dup.yaml: line 3" in str(info.value)
    with pytest.raises(ProgrammeError, match="file does not exist"):
        load_programme(tmp_path / "missing.yaml")


def test_kind_lookup_names_the_exercises() -> None:
    p = load_programme(REMOTE)
    assert p.kind_of("walking") == "walking" and p.kind_of("biceps_curl") == "resistance"
    with pytest.raises(Exception, match="exercises: walking, knee_extension, biceps_curl"):
        p.kind_of("cycling")


def test_example_folder_holds_only_valid_programmes() -> None:
    for path in (REPO / "examples" / "programmes").glob("*.yaml"):
        load_programme(path)
