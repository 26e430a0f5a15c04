"""Pure rules against published values (domain.md A2, A3, A5, A7, A8)."""

from __future__ import annotations

import pytest

import immunorehab.rehab as rehab
from immunorehab.errors import RehabError, RehabWarning
from immunorehab.rehab import (
    dsq_pem_screen,
    estimate_1rm,
    iswt_completed_level,
    iswt_cumulative_distance,
    iswt_level_at_distance,
    iswt_level_speed,
    iswt_shuttles,
    predicted_vo2peak,
    walking_speed_from_iswt,
)
from immunorehab.rehab.rules import age_predicted_hr_max, heart_rate_band, hr_stop_limit, karvonen_hr, kmh

# Singh 1992 / Holland 2014 (domain.md A2): cumulative distance at the end of levels 1..12.
PUBLISHED_CUMULATIVE_M = [30, 70, 120, 180, 250, 330, 420, 520, 630, 750, 880, 1020]


def test_public_api_names_exist() -> None:
    assert rehab.iswt_level_speed is iswt_level_speed
    assert rehab.predicted_vo2peak is predicted_vo2peak
    assert rehab.estimate_1rm is estimate_1rm


@pytest.mark.parametrize("level", range(1, 13))
def test_iswt_level_speed_follows_the_published_rule(level: int) -> None:
    assert iswt_level_speed(level) == pytest.approx(0.50 + 0.17 * (level - 1), abs=1e-9)


def test_iswt_speed_range_is_1_8_to_8_53_kmh() -> None:
    assert round(kmh(iswt_level_speed(1)), 2) == 1.80
    assert round(kmh(iswt_level_speed(12)), 2) == 8.53


def test_iswt_cumulative_distances_match_the_published_table() -> None:
    assert [iswt_cumulative_distance(n) for n in range(1, 13)] == PUBLISHED_CUMULATIVE_M
    assert [iswt_shuttles(n) for n in (1, 12)] == [3, 14]
    assert iswt_cumulative_distance(0) == 0


def test_modified_15_level_test_extends_the_rule() -> None:
    assert [iswt_level_speed(n, levels=15) for n in (13, 14, 15)] == [2.54, 2.71, 2.88]
    assert iswt_cumulative_distance(15, levels=15) == 1500
    # the first 12 levels are the standard test
    assert [iswt_cumulative_distance(n, levels=15) for n in range(1, 13)] == PUBLISHED_CUMULATIVE_M


@pytest.mark.parametrize(
    ("distance", "level", "completed"),
    [(0, 1, 0), (30, 1, 1), (31, 2, 1), (230, 5, 4), (250, 5, 5), (300, 6, 5), (1020, 12, 12)],
)
def test_level_band_of_a_distance(distance: float, level: int, completed: int) -> None:
    assert iswt_level_at_distance(distance) == level
    assert iswt_completed_level(distance) == completed


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: iswt_level_speed(0), "from 1 to 12"),
        (lambda: iswt_level_speed(13), "from 1 to 12"),
        (lambda: iswt_level_speed(3, levels=14), r"12 levels \(standard\) or 15"),
        (lambda: iswt_level_at_distance(-10), ">= 0"),
        (lambda: iswt_level_at_distance(1030), "exceeds the 12-level test maximum of 1020 m"),
        (lambda: predicted_vo2peak(-1), ">= 0"),
        (lambda: predicted_vo2peak(float("nan")), "finite"),
    ],
)
def test_iswt_rejects_impossible_inputs(call, message: str) -> None:
    with pytest.raises(RehabError, match=message):
        call()


def test_singh_1994_equation() -> None:
    # domain.md A3: VO2peak = 4.19 + 0.025 x D; worked example D = 300 m -> 11.7 ml/kg/min
    assert predicted_vo2peak(0) == pytest.approx(4.19)
    assert predicted_vo2peak(300) == pytest.approx(11.69)
    assert round(predicted_vo2peak(300), 1) == 11.7
    assert predicted_vo2peak(1020) == pytest.approx(29.69)


def test_worked_example_300_m_gives_level_5_at_1_18_m_s() -> None:
    """domain.md A3: D=300 m -> vo2pk 11.7; 85% -> 9.94; D_t ~ 230 m -> level 5 -> 1.18 m/s (4.25 km/h)."""
    speed = walking_speed_from_iswt(300, 0.85)
    assert speed.method == "singh_vo2peak_fraction"
    assert speed.predicted_vo2peak == pytest.approx(11.69)
    assert round(speed.target_vo2, 2) == 9.94
    assert round(speed.target_distance_m) == 230
    assert speed.level == 5
    assert speed.speed_m_s == 1.18
    assert round(speed.speed_kmh, 2) == 4.25
    assert "level 5" in speed.describe() and "1.18 m/s" in speed.describe()


def test_speed_conversion_uses_the_band_containing_the_target_distance() -> None:
    # 60% of VO2peak at D = 300: 7.014 -> D_t = 112.96 m, inside level 3's band (70, 120]
    assert walking_speed_from_iswt(300, 0.60).level == 3
    # a target below the equation's intercept falls into level 1
    low = walking_speed_from_iswt(20, 0.6)
    assert low.target_distance_m < 0 and low.level == 1 and low.speed_m_s == 0.5


def test_peak_speed_fraction_method() -> None:
    # Hill et al. 2012: walk at 85% of the peak ISWT speed; 300 m ends in level 6 (1.35 m/s)
    speed = walking_speed_from_iswt(300, 0.85, method="iswt_peak_speed_fraction")
    assert speed.level == 6
    assert speed.speed_m_s == pytest.approx(0.85 * 1.35, abs=1e-3)
    assert speed.predicted_vo2peak is None


def test_brzycki_and_epley_worked_values() -> None:
    assert estimate_1rm(100, 5, method="brzycki") == pytest.approx(112.5)  # 100 x 36 / 32
    assert estimate_1rm(100, 5, method="epley") == pytest.approx(116.6667, abs=1e-4)  # 100 x (1 + 5/30)
    assert estimate_1rm(60, 8, method="brzycki") == pytest.approx(60 * 36 / 29)
    assert estimate_1rm(60, 8, method="epley") == pytest.approx(76.0)


@pytest.mark.parametrize("load", [20.0, 57.5, 140.0])
def test_brzycki_and_epley_coincide_at_ten_repetitions(load: float) -> None:
    # domain.md A5: the two equations coincide at r = 10 (both 4/3 of the load)
    assert estimate_1rm(load, 10, method="brzycki") == pytest.approx(load * 4 / 3)
    assert estimate_1rm(load, 10, method="epley") == pytest.approx(load * 4 / 3)


def test_a_single_repetition_is_the_1rm() -> None:
    assert estimate_1rm(80, 1, method="brzycki") == 80
    assert estimate_1rm(80, 1, method="epley") == 80  # not Epley's 1.033 x 80


def test_1rm_validity_limits() -> None:
    with pytest.raises(RehabError, match="undefined for 37 or more"):
        estimate_1rm(50, 37, method="brzycki")
    with pytest.raises(RehabError, match=">= 1"):
        estimate_1rm(50, 0, method="epley")
    with pytest.raises(RehabError, match="> 0 kg"):
        estimate_1rm(0, 5, method="epley")
    with pytest.raises(RehabError, match="'brzycki' or 'epley'"):
        estimate_1rm(50, 5, method="lombardi")  # type: ignore[arg-type]
    with pytest.warns(RehabWarning, match="validated for about 10"):
        assert estimate_1rm(50, 15, method="epley") == pytest.approx(75.0)


def test_heart_rate_rules() -> None:
    assert age_predicted_hr_max(60) == 160
    assert hr_stop_limit(60) == pytest.approx(136.0)  # 85% of 220 - age (ACSM; domain.md A7)
    assert karvonen_hr(70, 160, 0.5) == pytest.approx(115.0)
    band = heart_rate_band(60, 0.4, 0.6, method="karvonen", hr_rest_bpm=72)
    assert (band.low_bpm, band.high_bpm) == pytest.approx((72 + 0.4 * 88, 72 + 0.6 * 88))
    percent = heart_rate_band(50, 0.6, 0.8, method="percent_hr_max")
    assert (percent.low_bpm, percent.high_bpm) == pytest.approx((102.0, 136.0))
    with pytest.raises(RehabError, match="resting heart rate"):
        heart_rate_band(60, 0.4, 0.6, method="karvonen")
    with pytest.raises(RehabError, match="below the maximal"):
        karvonen_hr(170, 160, 0.5)


def test_dsq_pem_step_one_needs_frequency_and_severity_on_the_same_item() -> None:
    assert dsq_pem_screen([2, 0, 0, 0, 0], [2, 0, 0, 0, 0]).positive
    screen = dsq_pem_screen([0, 0, 3, 0, 4], [0, 0, 2, 0, 4])
    assert screen.positive and screen.items == (3, 5)
    assert "item 3 (frequency 3, severity 2)" in screen.describe()
    # frequent but mild on one item, severe but rare on another: negative (Cotler 2018 step 1)
    assert not dsq_pem_screen([4, 1, 0, 0, 0], [1, 4, 0, 0, 0]).positive
    assert not dsq_pem_screen([1] * 5, [4] * 5).positive


@pytest.mark.parametrize(
    ("frequency", "severity", "message"),
    [([0] * 4, [0] * 5, "5 frequency and 5 severity"), ([5, 0, 0, 0, 0], [0] * 5, "item 1 frequency")],
)
def test_dsq_pem_rejects_bad_ratings(frequency: list[int], severity: list[int], message: str) -> None:
    with pytest.raises(RehabError, match=message):
        dsq_pem_screen(frequency, severity)
