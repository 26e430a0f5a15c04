"""Presets and the trial's --effect parsing."""

from __future__ import annotations

import pytest

from immunorehab.errors import SimulationError
from immunorehab.simulate.presets import (
    DEFAULT_COUNT_RATIOS,
    EFFECT_GATES,
    PRESETS,
    TrialEffects,
    parse_effects,
    preset,
)
from immunorehab.study.protocol import load_protocol
from testpaths import PROTOCOLS


def test_effects_parse_names_all_and_none() -> None:
    effects = parse_effects(["cd8_naive=1.5", "iswt=52", "eswt=100", "sts=3"])
    assert effects.ratio("cd8_naive") == 1.5
    assert effects.ratio("cd4_naive") == DEFAULT_COUNT_RATIOS["cd4_naive"]
    assert (effects.iswt_m, effects.eswt_s, effects.sts_reps) == (52.0, 100.0, 3.0)
    assert all(parse_effects(["all=1.1"]).ratio(g) == 1.1 for g in EFFECT_GATES)
    null = parse_effects(["none"])
    assert all(null.ratio(g) == 1.0 for g in EFFECT_GATES) and null.iswt_m == 0.0
    assert parse_effects([]) == TrialEffects()
    assert parse_effects(["none", "cd8_em=2"]).ratio("cd8_em") == 2.0  # later items win


def test_effect_errors_list_every_problem() -> None:
    with pytest.raises(SimulationError) as err:
        parse_effects(["cd8_temra=1.2", "cd8_naive=-1", "iswt", "cd4_cm=abc"])
    text = str(err.value)
    assert "unknown effect 'cd8_temra'" in text and "cd4_naive, cd4_cm" in text
    assert "'cd8_naive=-1': a count ratio must be positive" in text
    assert "'iswt': expected NAME=NUMBER" in text and "'cd4_cm=abc'" in text


def test_presets_match_the_seed_studies_and_ship_valid_protocols() -> None:
    trial, cohort = preset("seed-trial"), preset("seed-cohort")
    assert (trial.participants, trial.design) == (31, "trial")  # PHOSP-R immune sub-study n=31
    assert (cohort.participants, cohort.design) == (78, "cohort")  # Fong 2023 / A*STAR: 78 patients
    for spec in PRESETS.values():
        protocol = load_protocol(spec.protocol_path())
        assert protocol.analysis is not None and protocol.design == spec.design
        assert spec.protocol_path().read_bytes() == (PROTOCOLS / spec.protocol_file).read_bytes()
    trial_protocol = load_protocol(trial.protocol_path())
    assert [a.id for a in trial_protocol.arms] == ["face_to_face", "usual_care"]
    plan = trial_protocol.analysis
    assert plan is not None
    primary = [o for o in plan.outcomes if o.role == "primary"]
    assert [(o.id, o.source.type) for o in primary] == [("iswt_week8", "visit")]
    subsets = [o for o in plan.outcomes if o.family == "t_cell_subsets"]
    assert {o.source.gate for o in subsets} == {  # type: ignore[union-attr]
        f"{s}_{m}" for s in ("cd4", "cd8") for m in ("naive", "cm", "em", "temra")
    }
    assert all(o.transform == "log" for o in subsets)
    assert {f.id: f.method for f in plan.families}["t_cell_subsets"] == "BH"


def test_unknown_preset_names_the_choices() -> None:
    with pytest.raises(SimulationError, match="unknown preset 'seed'.*seed-trial, seed-cohort"):
        preset("seed")
