"""Baseline assessment checks and the individual prescription (domain.md A3, A5, A7, A8)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from immunorehab.errors import AssessmentError
from immunorehab.rehab.assessment import assessment_from_values
from immunorehab.rehab.doses import CyclingDose, ResistanceDose, WalkingDose, dose_within_caps
from immunorehab.rehab.prescribe import build_plan, plan_from_json
from immunorehab.rehab.programme import Programme, parse_programme
from unit.rehab.rehab_factories import F2F, REMOTE, assessment, plan, programme, rehab_values

RAW: dict[str, Any] = yaml.safe_load(F2F.read_text())


def _programme(change: dict[str, Any]) -> Programme:
    data = copy.deepcopy(RAW)
    for path, value in change.items():
        node = data
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return parse_programme(yaml.safe_dump(data))


def _problems(**kwargs: Any) -> list[str]:
    with pytest.raises(AssessmentError) as info:
        assessment(**kwargs)
    return [str(p) for p in info.value.problems]


# -- assessment ---------------------------------------------------------------------------


def test_assessment_reads_every_baseline_value() -> None:
    a = assessment()
    assert (a.iswt_distance_m, a.iswt_levels, a.iswt_last_level) == (300, 15, 5)
    assert (a.hr_rest_bpm, a.mwt6_distance_m, a.sts_5rep_time_s, a.age_years) == (72, 380, 12.5, 60)
    leg = a.one_rm_of("leg_press")
    assert (leg.method, leg.load_kg, leg.reps) == ("brzycki", 40, 6)
    assert leg.one_rm_kg == pytest.approx(40 * 36 / 31)
    assert not a.pem.positive and a.pem.source == "items"


def test_one_rm_methods_are_recorded() -> None:
    a = assessment(rm_leg_press_method="epley", rm_chest_press_reps=1, rm_chest_press_method="measured")
    assert a.one_rm_of("leg_press").one_rm_kg == pytest.approx(48.0)  # 40 x (1 + 6/30)
    assert a.one_rm_of("chest_press").one_rm_kg == 40 and a.one_rm_of("chest_press").method == "measured"
    assert "Epley from 40 kg x 6" in a.one_rm_of("leg_press").describe()


def test_last_level_must_match_the_distance() -> None:
    problems = _problems(iswt_last_level=7)
    assert any("iswt_last_level" in p and "completes level 5 of the 15-level test" in p for p in problems)


def test_dsq_items_decide_the_screen_and_must_agree_with_the_flag() -> None:
    assert assessment(pem_positive=True).pem.positive
    assert assessment(pem_positive=True).pem.items == (2,)
    problems = _problems(pem_positive=True, dsq_pem_present="no")
    assert any("dsq_pem_present" in p and "items give positive" in p for p in problems)
    problems = _problems(dsq_pem_3_severity=None)
    assert any("partly recorded: missing dsq_pem_3_severity" in p for p in problems)


def test_flag_alone_is_accepted_when_no_items_are_recorded() -> None:
    values = {
        k: v for k, v in rehab_values().items() if not k.startswith("dsq_pem_") or k == "dsq_pem_present"
    }
    values["dsq_pem_present"] = True
    a = assessment_from_values(values, participant_id="X", age_years=50, programme=programme())
    assert a.pem.positive and a.pem.source == "flag"


def test_every_assessment_problem_is_listed_at_once() -> None:
    problems = _problems(
        age=None,
        iswt_distance_m=None,
        rm_leg_press_reps=12,
        rm_chest_press_method="measured",
        rm_biceps_curl_load_kg=None,
        hr_rest_bpm=None,
        dsq_pem_present=None,
        **{f"dsq_pem_{i}_{w}": None for i in range(1, 6) for w in ("frequency", "severity")},
    )
    expected = [
        "age_years: is required for heart-rate limits",
        "iswt_distance_m: is required",
        "rm_leg_press_reps: brzycki 1RM estimates are used from 1 to 10 repetitions",
        "rm_chest_press_reps: a measured 1RM is one repetition, got 6",
        "rm_biceps_curl_load_kg: is required for Biceps curl",
        "hr_rest_bpm: is required for the Karvonen heart-rate band",
        "dsq_pem_present: the DSQ-PEM screen is required",
    ]
    for text in expected:
        assert any(text in p for p in problems), (text, problems)
    assert len(problems) == len(expected)


# -- prescription -------------------------------------------------------------------------


def test_worked_example_through_a_programme_at_85_percent() -> None:
    prog = _programme({"aerobic.walking.standard.start_fraction": 0.85})
    p = build_plan(assessment(prog=prog), prog)
    walking = p.exercise("walking")
    assert p.walking_speed.level == 5 and p.walking_speed.speed_m_s == 1.18
    assert walking.start == WalkingDose(10, 4.2, 0.0)  # 1.18 m/s = 4.25 km/h -> treadmill 4.2 km/h
    assert "level 5 of 15 -> 1.18 m/s (4.25 km/h)" in walking.basis


def test_standard_prescription_of_the_face_to_face_programme() -> None:
    p = plan()
    assert p.mode == "standard" and p.programme_id == "phosp-r-face-to-face"
    # 80% of 11.69 = 9.35 ml/kg/min -> D_t 206 m -> level 5 (1.18 m/s)
    assert p.walking_speed.method == "singh_vo2peak_fraction" and p.walking_speed.level == 5
    walking = p.exercise("walking")
    assert walking.start == WalkingDose(10, 4.2, 0.0)
    assert walking.caps.max_speed_kmh == 4.8  # the test ended in level 6 (1.35 m/s = 4.86 km/h)
    assert walking.caps.target_minutes == 30
    assert p.exercise("cycling").start == CyclingDose(5, 20)
    one_rm = 40 * 36 / 31
    leg = p.exercise("leg_press")
    assert leg.start == ResistanceDose(27.0, 2, 8)  # 60% of 46.45 kg = 27.87, down to 1 kg steps
    assert leg.caps.max_load_kg == 37.0 and leg.one_rm.one_rm_kg == pytest.approx(one_rm)
    assert p.exercise("biceps_curl").start == ResistanceDose(18.0, 1, 15)  # endurance: 40%, 1 x 15
    assert p.heart_rate is not None and p.heart_rate.method == "karvonen"
    assert (p.heart_rate.low_bpm, p.heart_rate.high_bpm) == pytest.approx((107.2, 124.8))
    assert p.hr_stop_bpm == pytest.approx(136.0) and p.spo2_floor_pct == 88


def test_positive_pem_screen_switches_to_the_pacing_mode() -> None:
    standard, pacing = plan(), plan(pem_positive=True)
    assert pacing.mode == "pacing" and pacing.pem.positive
    # pacing: 60% of VO2peak -> D_t 113 m -> level 3 (0.84 m/s = 3.0 km/h), 5 min
    assert pacing.exercise("walking").start == WalkingDose(5, 3.0, 0.0)
    assert pacing.exercise("cycling").start == CyclingDose(3, 10)
    assert pacing.exercise("leg_press").start == ResistanceDose(20.0, 2, 8)  # 0.75 x 60% of 1RM
    for ex in standard.exercises:
        slower = pacing.exercise(ex.exercise_id).start
        assert not ex.start == slower
        assert all(
            getattr(slower, f) <= getattr(ex.start, f)
            for f in ex.start.__slots__  # type: ignore[union-attr]
        )


def test_physio_can_force_pacing() -> None:
    assert build_plan(assessment(), programme(), mode="pacing").mode == "pacing"


def test_remote_programme_has_no_cycling_and_no_hr_band() -> None:
    prog = programme(REMOTE)
    p = build_plan(assessment(prog=prog), prog)
    assert [e.exercise_id for e in p.exercises] == ["walking", "knee_extension", "biceps_curl"]
    assert p.heart_rate is None and p.hr_stop_bpm == pytest.approx(136.0)
    # 70% -> 8.18 ml/kg/min -> D_t 160 m -> level 4 (1.01 m/s = 3.64 km/h -> 3.6)
    assert p.exercise("walking").start == WalkingDose(10, 3.6, 0.0)
    assert p.exercise("knee_extension").start == ResistanceDose(18.5, 1, 15)  # 0.5 kg steps


def test_every_start_is_within_its_caps() -> None:
    for distance, level in ((40, 1), (300, 5), (1100, 12)):
        p = plan(iswt_distance_m=distance, iswt_last_level=level)
        for ex in p.exercises:
            assert dose_within_caps(ex.start, ex.caps) == []


def test_a_1rm_too_light_for_the_equipment_is_refused() -> None:
    with pytest.raises(AssessmentError, match="too light for 1 kg load steps"):
        plan(rm_biceps_curl_load_kg=1, rm_biceps_curl_reps=1, rm_biceps_curl_method="measured")


def test_plan_json_round_trip() -> None:
    for p in (
        plan(),
        plan(pem_positive=True),
        build_plan(assessment(prog=programme(REMOTE)), programme(REMOTE)),
    ):
        assert plan_from_json(p.to_json()) == p
