"""Protocol design (trial/cohort) and the analysis plan: examples, defaults, every kind of problem."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from immunorehab.errors import ProtocolError
from immunorehab.study.analysis_plan import CytokineSource, CytometrySource, RehabSource, VisitSource
from immunorehab.study.demo import default_protocol_path
from immunorehab.study.protocol import NoRandomisation, Protocol, load_protocol, parse_protocol

EXAMPLES = Path(__file__).parents[3] / "examples" / "protocols"
PHOSP = EXAMPLES / "phosp_r_immune.yaml"
TWO_ARM = EXAMPLES / "two_arm_minimisation.yaml"
FONG = EXAMPLES / "fong_cohort.yaml"
PACKAGED = Path(__file__).parents[3] / "src" / "immunorehab" / "data"
SRC = "test.yaml"
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

Raw = dict[str, Any]


def raw(path: Path = PHOSP) -> Raw:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=LOADER)
    assert isinstance(data, dict)
    return data


def parse(data: Raw) -> Protocol:
    return parse_protocol(yaml.dump(data, Dumper=DUMPER, sort_keys=False), SRC)


def problems_of(data: Raw) -> dict[str, str]:
    with pytest.raises(ProtocolError) as info:
        parse(data)
    return {p.location: p.message for p in info.value.problems}


# -- the examples ------------------------------------------------------------------------


def test_phosp_analysis_plan() -> None:
    plan = load_protocol(PHOSP).analysis
    assert plan is not None
    assert plan.reference_arm == "usual_care"
    assert [(c.arm, c.primary) for c in plan.contrasts] == [("face_to_face", True), ("remote", True)]
    assert plan.covariates is None  # default: the stratification factors
    assert plan.imputation is not None and (plan.imputation.m, plan.imputation.seed) == (20, 20230309)
    assert plan.per_protocol is not None and plan.per_protocol.programme_arms == ["face_to_face", "remote"]
    primary = [o for o in plan.outcomes if o.role == "primary"]
    assert [(o.id, o.model, o.population, o.visits) for o in primary] == [
        ("iswt_week8", "ancova", "both", ["week8"])
    ]
    kinds = {type(o.source) for o in plan.outcomes}
    assert kinds == {VisitSource, CytometrySource, CytokineSource, RehabSource}
    mmrm = next(o for o in plan.outcomes if o.model == "mmrm")
    assert (mmrm.visits, mmrm.primary_visit) == (["week8", "month3", "month6", "month12"], "month12")
    assert plan.family_method("t_cell_subsets") == "BH"
    assert plan.family_method("primary") == "holm"


def test_two_arm_analysis_plan() -> None:
    plan = load_protocol(TWO_ARM).analysis
    assert plan is not None
    primary = [o.id for o in plan.outcomes if o.role == "primary"]
    assert primary == ["cd4_naive", "cd8_naive", "cd4_cm", "cd8_cm", "cd8_em"]
    assert {o.family for o in plan.outcomes if o.role == "primary"} == {"memory_subsets"}
    count = next(o for o in plan.outcomes if o.id == "cd8_naive_count")
    assert isinstance(count.source, CytometrySource) and count.source.quantity == "per_ul"


def test_fong_cohort_example() -> None:
    p = load_protocol(FONG)
    assert p.design == "cohort" and not p.randomised
    assert p.arms == []
    assert isinstance(p.randomisation, NoRandomisation)
    assert p.baseline_visit().id == "baseline"
    plan = p.analysis
    assert plan is not None and plan.group is not None
    assert (plan.group.measure, plan.group.visit) == ("symptoms_present", "month12")
    assert [n.threshold for n in plan.normalisation] == [3.53, 4.53, 3.90]
    assert [o.model for o in plan.outcomes].count("mixed") == 6
    assert plan.prevalence[0].visits == ["month6", "month12", "month24"]


def test_packaged_copies_are_the_examples() -> None:
    assert default_protocol_path().read_bytes() == PHOSP.read_bytes()
    assert (PACKAGED / "fong_cohort.yaml").read_bytes() == FONG.read_bytes()


def test_cohort_randomisation_may_be_omitted() -> None:
    data = raw(FONG)
    del data["randomisation"]
    assert isinstance(parse(data).randomisation, NoRandomisation)


def test_defaults_and_family_method() -> None:
    data = raw(TWO_ARM)
    del data["analysis"]["families"][1]["method"]  # other_subsets: all exploratory
    del data["analysis"]["families"][0]["method"]  # memory_subsets: primary outcomes
    plan = parse(data).analysis
    assert plan is not None
    assert plan.family_method("other_subsets") == "BH"
    assert plan.family_method("memory_subsets") == "holm"
    assert plan.alpha == 0.05 and plan.df_method == "kenward-roger"
    assert plan.multiplicity.across_contrasts is False
    cytometry = plan.outcomes[0].source
    assert isinstance(cytometry, CytometrySource) and cytometry.tube is None


def test_baseline_visit_defaults_to_day_zero() -> None:
    data = raw(PHOSP)
    del data["analysis"]["baseline_visit"]
    assert parse(data).baseline_visit().id == "baseline"
    data["analysis"] = None
    del data["analysis"]
    assert parse(data).baseline_visit().id == "baseline"


# -- hashing -----------------------------------------------------------------------------------


def test_hash_of_a_protocol_without_the_new_keys_is_unchanged() -> None:
    data = raw(PHOSP)
    del data["analysis"]
    plain = parse(data)
    canonical = json.loads(plain.canonical_json())
    assert "design" not in canonical and "analysis" not in canonical
    data["design"] = "trial"
    assert parse(data).sha256() == plain.sha256()
    assert load_protocol(PHOSP).sha256() != plain.sha256()  # the analysis plan is hashed


def test_cohort_round_trips_through_canonical_json() -> None:
    p = load_protocol(FONG)
    assert Protocol.model_validate_json(p.canonical_json()) == p
    assert json.loads(p.canonical_json())["design"] == "cohort"


# -- each kind of problem, with its key path -----------------------------------------------------


def _set(path: list[Any], value: Any) -> Callable[[Raw], None]:
    def mutate(data: Raw) -> None:
        node: Any = data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return mutate


def _drop(path: list[Any]) -> Callable[[Raw], None]:
    def mutate(data: Raw) -> None:
        node: Any = data
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]

    return mutate


def _both(*mutations: Callable[[Raw], None]) -> Callable[[Raw], None]:
    def mutate(data: Raw) -> None:
        for m in mutations:
            m(data)

    return mutate


A = "analysis"
O0 = [A, "outcomes", 0]  # PHOSP iswt_week8 (visit source, ancova)
CYTO = [A, "outcomes", 7]  # PHOSP cd4_naive (cytometry source)
MMRM = [A, "outcomes", 6]  # PHOSP iswt_12m
REHAB = [A, "outcomes", 21]  # PHOSP attendance (rehab source)

CASES = [
    ("unknown design", PHOSP, _set(["design"], "rct"), "design", "must be one of 'trial', 'cohort'"),
    ("trial without randomisation", PHOSP, _drop(["randomisation"]), "randomisation", "required key"),
    (
        "trial method none",
        PHOSP,
        _set(["randomisation"], {"method": "none"}),
        "randomisation.method",
        "cohort",
    ),
    ("cohort with arms", FONG, _set(["arms"], [{"id": "a", "label": "A"}]), "arms", "no arms"),
    (
        "cohort randomised",
        FONG,
        _set(["randomisation"], {"method": "permuted_blocks"}),
        "randomisation.method",
        "not randomised",
    ),
    ("analysis key typo", PHOSP, _set([A, "alhpa"], 0.05), "analysis.alhpa", "unknown key 'alhpa'"),
    ("alpha out of range", PHOSP, _set([A, "alpha"], 1.5), "analysis.alpha", "must be a number > 0 and < 1"),
    (
        "unknown source type",
        PHOSP,
        _set([*O0, "source"], {"type": "flow", "gate": "x"}),
        "analysis.outcomes[0].source.type",
        "unknown type 'flow' (allowed: 'visit', 'cytometry', 'cytokine', 'rehab')",
    ),
    (
        "source key typo",
        PHOSP,
        _set([*CYTO, "source", "quantiy"], "pct_total"),
        "analysis.outcomes[7].source.quantiy",
        "unknown key 'quantiy' (allowed: type, gate, quantity, tube)",
    ),
    (
        "bad gate quantity",
        PHOSP,
        _set([*CYTO, "source", "quantity"], "percent"),
        "analysis.outcomes[7].source.quantity",
        "must be one of 'pct_parent', 'pct_total', 'per_ul'",
    ),
    (
        "unknown measure",
        PHOSP,
        _set([*O0, "source", "measure"], "vo2max"),
        "analysis.outcomes[0].source.measure",
        "visit 'baseline' has no measure 'vo2max'",
    ),
    (
        "measure not numeric",
        PHOSP,
        _set([*O0, "source", "measure"], "dsq_pem_present"),
        "analysis.outcomes[0].source.measure",
        "is boolean at visit 'baseline'; expected number or integer",
    ),
    (
        "measure missing at a follow-up visit",
        PHOSP,
        _set([*O0, "visits"], ["month24"]),
        "analysis.outcomes[0].source.measure",
        "visit 'month24' has no measure 'iswt_distance_m'",
    ),
    (
        "unknown visit",
        PHOSP,
        _set([*O0, "visits"], ["week9"]),
        "analysis.outcomes[0].visits[0]",
        "unknown visit",
    ),
    (
        "baseline as follow-up",
        PHOSP,
        _set([*O0, "visits"], ["baseline"]),
        "analysis.outcomes[0].visits[0]",
        "is the baseline visit",
    ),
    (
        "ancova with two visits",
        PHOSP,
        _set([*O0, "visits"], ["week8", "month3"]),
        "analysis.outcomes[0].visits",
        "exactly one follow-up visit, got 2",
    ),
    (
        "primary visit on ancova",
        PHOSP,
        _set([*O0, "primary_visit"], "week8"),
        "analysis.outcomes[0].primary_visit",
        "only for mmrm",
    ),
    (
        "primary visit not among visits",
        PHOSP,
        _set([*MMRM, "primary_visit"], "month24"),
        "analysis.outcomes[6].primary_visit",
        "not one of the outcome's visits",
    ),
    (
        "unknown family",
        PHOSP,
        _set([*O0, "family"], "main"),
        "analysis.outcomes[0].family",
        "unknown family 'main'",
    ),
    (
        "unused family",
        PHOSP,
        lambda d: d[A]["families"].append({"id": "spare"}),
        "analysis.families[5].id",
        "has no outcomes",
    ),
    (
        "missing family",
        PHOSP,
        _drop([*O0, "family"]),
        "analysis.outcomes[0].family",
        "required for an outcome",
    ),
    (
        "unknown reference arm",
        PHOSP,
        _set([A, "reference_arm"], "placebo"),
        "analysis.reference_arm",
        "unknown arm",
    ),
    (
        "no reference arm",
        PHOSP,
        _drop([A, "reference_arm"]),
        "analysis.reference_arm",
        "required to compare arms",
    ),
    (
        "contrast of the reference",
        PHOSP,
        _set([A, "contrasts", 1, "arm"], "usual_care"),
        "analysis.contrasts[1].arm",
        "is the reference arm",
    ),
    (
        "duplicate contrast",
        PHOSP,
        _set([A, "contrasts", 1, "arm"], "face_to_face"),
        "analysis.contrasts[1].arm",
        "duplicate contrast arm",
    ),
    (
        "unknown programme arm",
        PHOSP,
        _set([A, "per_protocol", "programme_arms"], ["gym"]),
        "analysis.per_protocol.programme_arms[0]",
        "unknown arm 'gym'",
    ),
    (
        "per-protocol without completer definition",
        PHOSP,
        _drop([A, "per_protocol"]),
        "analysis.outcomes[0].population",
        "needs analysis.per_protocol",
    ),
    (
        "unknown covariate",
        PHOSP,
        _set([A, "covariates"], ["bmi"]),
        "analysis.covariates[0]",
        "unknown covariate 'bmi'",
    ),
    (
        "duplicate covariate",
        PHOSP,
        _set([A, "covariates"], ["age_years", "age_years"]),
        "analysis.covariates[1]",
        "duplicate covariate",
    ),
    (
        "duplicate outcome id",
        PHOSP,
        _set([A, "outcomes", 1, "id"], "iswt_week8"),
        "analysis.outcomes[1].id",
        "duplicate id 'iswt_week8'",
    ),
    (
        "rehab with a model",
        PHOSP,
        _set([*REHAB, "model"], "ancova"),
        "analysis.outcomes[21].model",
        "descriptive",
    ),
    ("imputation m", PHOSP, _set([A, "imputation", "m"], 1), "analysis.imputation.m", ">= 2"),
    ("imputation seed", PHOSP, _drop([A, "imputation", "seed"]), "analysis.imputation.seed", "required key"),
    (
        "group in a trial",
        PHOSP,
        _set([A, "group"], raw(FONG)[A]["group"]),
        "analysis.group",
        "only for cohort",
    ),
    (
        "cohort ancova",
        FONG,
        _both(_set([A, "outcomes", 0, "model"], "ancova"), _set([A, "outcomes", 0, "visits"], ["month6"])),
        "analysis.outcomes[0].model",
        "a cohort has no arms to compare",
    ),
    (
        "cohort reference arm",
        FONG,
        _set([A, "reference_arm"], "x"),
        "analysis.reference_arm",
        "a cohort has no arms",
    ),
    (
        "cohort per-protocol",
        FONG,
        _set([A, "outcomes", 0, "population"], "both"),
        "analysis.outcomes[0].population",
        "one population",
    ),
    (
        "group measure not categorical",
        FONG,
        _set([A, "group", "measure"], "symptom_count"),
        "analysis.group.measure",
        "expected boolean or choice",
    ),
    (
        "group visit unknown",
        FONG,
        _set([A, "group", "visit"], "month36"),
        "analysis.group.visit",
        "unknown visit",
    ),
    (
        "group reference not a label",
        FONG,
        _set([A, "group", "reference"], "healthy"),
        "analysis.group.reference",
        "one of the group labels",
    ),
    (
        "prevalence of a number",
        FONG,
        _set([A, "prevalence", 0, "measure"], "symptom_count"),
        "analysis.prevalence[0].measure",
        "expected boolean",
    ),
    (
        "prevalence by unknown",
        FONG,
        _set([A, "prevalence", 0, "by"], "bmi"),
        "analysis.prevalence[0].by",
        "unknown",
    ),
    (
        "normalisation visit unknown",
        FONG,
        _set([A, "normalisation", 0, "visits"], ["month36"]),
        "analysis.normalisation[0].visits[0]",
        "unknown visit",
    ),
    (
        "normalisation source typo",
        FONG,
        _set([A, "normalisation", 0, "source"], {"type": "cytokine", "analyt": "IL-6"}),
        "analysis.normalisation[0].source.analyt",
        "unknown key",
    ),
]


@pytest.mark.parametrize(
    ("example", "mutate", "path", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_problem_has_key_path_and_message(
    example: Path, mutate: Callable[[Raw], Any], path: str, expected: str
) -> None:
    data = raw(example)
    mutate(data)
    found = problems_of(data)
    location = f"{SRC}: {path}"
    assert location in found, f"no problem at {location!r}; got {found}"
    assert expected in found[location], found[location]


def test_prevalence_by_group_and_covariate_is_accepted() -> None:
    data = raw(FONG)
    data[A]["prevalence"][0]["by"] = "symptom_status"
    assert parse(data).analysis is not None
    data[A]["prevalence"][0]["by"] = "who_severity"
    assert parse(data).analysis is not None


def test_several_analysis_problems_reported_together() -> None:
    data = raw(PHOSP)
    data[A]["reference_arm"] = "placebo"
    data[A]["outcomes"][0]["visits"] = ["week9"]
    data[A]["outcomes"][7]["source"]["quantity"] = "percent"
    found = problems_of(data)
    assert {
        f"{SRC}: analysis.reference_arm",
        f"{SRC}: analysis.outcomes[0].visits[0]",
        f"{SRC}: analysis.outcomes[7].source.quantity",
    } <= set(found)
