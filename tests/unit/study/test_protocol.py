"""Protocol files: loading, every kind of validation problem, strata, eligibility, hashing."""

from __future__ import annotations

import copy
import datetime as dt
import pickle
import random
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from immunorehab.errors import NotFoundError, ProtocolError
from immunorehab.study.protocol import (
    Criterion,
    Level,
    Measure,
    MinimisationSettings,
    PermutedBlocksSettings,
    Protocol,
    StratificationFactor,
    load_protocol,
    parse_protocol,
)

EXAMPLES = Path(__file__).parents[3] / "examples" / "protocols"
PHOSP = EXAMPLES / "phosp_r_immune.yaml"
TWO_ARM = EXAMPLES / "two_arm_minimisation.yaml"
SRC = "test.yaml"

Raw = dict[str, Any]
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@cache
def _raw_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def raw(path: Path = PHOSP) -> Raw:
    """A fresh, mutable copy of an example protocol's YAML data."""
    data = yaml.load(_raw_text(path), Loader=LOADER)
    assert isinstance(data, dict)
    return data


def parse(data: Raw) -> Protocol:
    return parse_protocol(yaml.dump(data, Dumper=DUMPER, sort_keys=False), SRC)


def problems_of(data: Raw) -> dict[str, str]:
    with pytest.raises(ProtocolError) as info:
        parse(data)
    return {p.location: p.message for p in info.value.problems}


@cache
def phosp() -> Protocol:
    return load_protocol(PHOSP)


@cache
def two_arm() -> Protocol:
    return load_protocol(TWO_ARM)


# -- the examples ------------------------------------------------------------------------


def test_phosp_example_loads() -> None:
    p = phosp()
    assert p.study.id == "phosp-r-immune"
    assert p.study.registry == "ISRCTN13293865"
    assert [s.code for s in p.sites] == ["LEI", "HAR"]
    assert [(a.id, a.ratio) for a in p.arms] == [("face_to_face", 1), ("remote", 1), ("usual_care", 1)]
    assert [f.name for f in p.stratification] == ["age_band", "acute_severity"]
    assert isinstance(p.randomisation, PermutedBlocksSettings)
    assert p.randomisation.block_multiples == [1, 2]
    assert p.randomisation.block_sizes(p.arms) == [3, 6]
    assert [(v.id, v.day) for v in p.visits] == [
        ("baseline", 0),
        ("week8", 56),
        ("month3", 91),
        ("month6", 182),
        ("month12", 365),
        ("month24", 730),
    ]
    baseline = p.visit("baseline")
    assert (baseline.window_before_days, baseline.window_after_days) == (14, 0)
    iswt = baseline.measure("iswt_distance_m")
    assert (iswt.type, iswt.unit, iswt.min, iswt.max) == ("integer", "m", 0, 1500)


def test_two_arm_example_uses_minimisation() -> None:
    p = two_arm()
    assert [a.id for a in p.arms] == ["face_to_face", "usual_care"]
    settings_ = p.randomisation
    assert isinstance(settings_, MinimisationSettings)
    assert settings_.probability == 0.8
    assert settings_.imbalance == "range"
    assert [f.name for f in p.stratification] == ["age_band", "acute_severity", "cmv_serostatus"]
    assert settings_.weight("cmv_serostatus") == 1.0


def test_defaults_are_filled_in() -> None:
    data = raw()
    data["randomisation"] = {"method": "minimisation"}
    rand = parse(data).randomisation
    assert isinstance(rand, MinimisationSettings)
    assert (rand.probability, rand.imbalance, rand.weights) == (0.8, "range", {})
    data["randomisation"] = {"method": "permuted_blocks"}
    blocks = parse(data).randomisation
    assert isinstance(blocks, PermutedBlocksSettings) and blocks.block_multiples == [1, 2]


def test_models_are_frozen() -> None:
    with pytest.raises(ValidationError):
        phosp().study.id = "other"  # type: ignore[misc]


# -- each kind of problem, with its key path -----------------------------------------------


def _set(path: list[Any], value: Any) -> Callable[[Raw], None]:
    def mutate(data: Raw) -> None:
        node: Any = data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return mutate


def _drop_arms(data: Raw) -> None:
    data["arms"] = data["arms"][:1]


def _duplicate_arm(data: Raw) -> None:
    data["arms"][2]["id"] = "face_to_face"


def _swap_days(data: Raw) -> None:
    data["visits"][2]["day"] = 40


def _rename_key(path: list[Any], old: str, new: str) -> Callable[[Raw], None]:
    def mutate(data: Raw) -> None:
        node: Any = data
        for part in path:
            node = node[part]
        node[new] = node.pop(old)

    return mutate


CASES = [
    (
        "top-level typo",
        PHOSP,
        _rename_key([], "stratification", "stratificaton"),
        "stratificaton",
        "unknown key",
    ),
    (
        "arm key typo",
        PHOSP,
        _rename_key(["arms", 1], "ratio", "ratoi"),
        "arms[1].ratoi",
        "unknown key 'ratoi' (allowed: id, label, ratio)",
    ),
    ("study key typo", PHOSP, _set(["study", "regsitry"], "x"), "study.regsitry", "unknown key 'regsitry'"),
    (
        "randomisation key typo",
        PHOSP,
        _set(["randomisation", "block_size"], 4),
        "randomisation.block_size",
        "allowed: method, block_multiples",
    ),
    (
        "measure key typo",
        PHOSP,
        _set(["visits", 1, "measures", 0, "units"], "m"),
        "visits[1].measures[0].units",
        "unknown key 'units'",
    ),
    (
        "level key typo",
        PHOSP,
        _set(["stratification", 0, "levels", 0, "maximum"], 3),
        "stratification[0].levels[0].maximum",
        "unknown key",
    ),
    ("ratio zero", PHOSP, _set(["arms", 2, "ratio"], 0), "arms[2].ratio", "must be an integer >= 1, got 0"),
    ("ratio quoted", PHOSP, _set(["arms", 0, "ratio"], "2"), "arms[0].ratio", "must be an integer, got '2'"),
    ("one arm", PHOSP, _drop_arms, "arms", "at least 2"),
    ("duplicate arm", PHOSP, _duplicate_arm, "arms[2].id", "duplicate arm id 'face_to_face'"),
    ("bad site code", PHOSP, _set(["sites", 1, "code"], "Har"), "sites[1].code", "three capital letters"),
    ("bad slug", PHOSP, _set(["study", "id"], "PHOSP R"), "study.id", "lowercase id"),
    ("missing key", PHOSP, lambda d: d["arms"][0].pop("label"), "arms[0].label", "required key is missing"),
    ("unquoted version", PHOSP, _set(["study", "version"], 1.5), "study.version", "quotes"),
    (
        "unknown field (criterion)",
        PHOSP,
        _set(["eligibility", 0, "field"], "age"),
        "eligibility[0].field",
        "unknown covariate field 'age'",
    ),
    (
        "unknown field (factor)",
        PHOSP,
        _set(["stratification", 1, "field"], "severity"),
        "stratification[1].field",
        "unknown covariate field",
    ),
    (
        "order op on choice",
        PHOSP,
        _set(["eligibility", 0], {"id": "x", "description": "d", "field": "sex", "op": "<", "value": "male"}),
        "eligibility[0].op",
        "'<' needs an integer or date field",
    ),
    (
        "choice value not allowed",
        PHOSP,
        _set(["eligibility", 0], {"id": "x", "description": "d", "field": "sex", "op": "==", "value": "fem"}),
        "eligibility[0].value",
        "must be one of female, male, other",
    ),
    (
        "bool field with number",
        PHOSP,
        _set(["eligibility", 1, "value"], 1),
        "eligibility[1].value",
        "must be true or false",
    ),
    ("in with scalar", PHOSP, _set(["eligibility", 0, "op"], "in"), "eligibility[0].value", "needs a list"),
    (
        "== with list",
        PHOSP,
        _set(["eligibility", 0, "value"], [18, 19]),
        "eligibility[0].value",
        "needs a single value",
    ),
    (
        "value outside covariate range",
        PHOSP,
        _set(["eligibility", 0, "value"], 150),
        "eligibility[0].value",
        "within 0..120",
    ),
    ("unknown op", PHOSP, _set(["eligibility", 0, "op"], "=>"), "eligibility[0].op", "must be one of '=='"),
    (
        "overlapping levels",
        PHOSP,
        _set(["stratification", 0, "levels", 1, "min"], 50),
        "stratification[0].levels[1]",
        "overlaps level '<60'",
    ),
    (
        "overlapping values",
        TWO_ARM,
        _set(["stratification", 2, "levels", 1, "values"], ["negative", "positive"]),
        "stratification[2].levels[1].values",
        "'positive' is also in level",
    ),
    (
        "level label with separator",
        PHOSP,
        _set(["stratification", 0, "levels", 0, "label"], "a|b"),
        "stratification[0].levels[0].label",
        "must not contain '|'",
    ),
    (
        "level min > max",
        PHOSP,
        _set(["stratification", 1, "levels", 0, "min"], 6),
        "stratification[1].levels[0].min",
        "must be <= max (5), got 6",
    ),
    (
        "level values and bounds",
        PHOSP,
        _set(["stratification", 0, "levels", 0, "values"], [1]),
        "stratification[0].levels[0]",
        "not both",
    ),
    (
        "one level",
        PHOSP,
        lambda d: d["stratification"][0]["levels"].pop(),
        "stratification[0].levels",
        "at least 2",
    ),
    (
        "bad probability",
        TWO_ARM,
        _set(["randomisation", "probability"], 0.5),
        "randomisation.probability",
        "must be a number > 0.5 and <= 1.0, got 0.5",
    ),
    (
        "probability above 1",
        TWO_ARM,
        _set(["randomisation", "probability"], 1.2),
        "randomisation.probability",
        "got 1.2",
    ),
    (
        "weights unknown factor",
        TWO_ARM,
        _set(["randomisation", "weights", "bmi"], 2.0),
        "randomisation.weights.bmi",
        "unknown stratification factor",
    ),
    (
        "negative weight",
        TWO_ARM,
        _set(["randomisation", "weights", "age_band"], -1.0),
        "randomisation.weights.age_band",
        "> 0",
    ),
    (
        "bad imbalance",
        TWO_ARM,
        _set(["randomisation", "imbalance"], "max"),
        "randomisation.imbalance",
        "one of 'range', 'variance'",
    ),
    (
        "unknown method",
        PHOSP,
        _set(["randomisation", "method"], "urn"),
        "randomisation.method",
        "unknown method 'urn'",
    ),
    (
        "zero block multiple",
        PHOSP,
        _set(["randomisation", "block_multiples"], [1, 0]),
        "randomisation.block_multiples[1]",
        ">= 1",
    ),
    ("days not increasing", PHOSP, _swap_days, "visits[2].day", "previous visit's day 56"),
    ("duplicate visit", PHOSP, _set(["visits", 3, "id"], "month3"), "visits[3].id", "duplicate visit id"),
    (
        "negative window",
        PHOSP,
        _set(["visits", 1, "window_before_days"], -7),
        "visits[1].window_before_days",
        "integer >= 0",
    ),
    (
        "measure min > max",
        PHOSP,
        _set(["visits", 0, "measures", 0, "min"], 2000),
        "visits[0].measures[0].min",
        "must be <= max (1500), got 2000",
    ),
    (
        "choice without choices",
        PHOSP,
        _set(["visits", 0, "measures", 11, "choices"], []),
        "visits[0].measures[11].choices",
        "required for a choice measure",
    ),
    (
        "choices on non-choice",
        PHOSP,
        _set(["visits", 0, "measures", 0, "choices"], ["a"]),
        "visits[0].measures[0].choices",
        "only allowed for choice",
    ),
    (
        "bounds on boolean",
        PHOSP,
        _set(["visits", 0, "measures", 10, "max"], 1),
        "visits[0].measures[10].max",
        "only allowed for number and integer",
    ),
    (
        "bad measure type",
        PHOSP,
        _set(["visits", 1, "measures", 0, "type"], "float"),
        "visits[1].measures[0].type",
        "one of 'number'",
    ),
    (
        "duplicate measure",
        PHOSP,
        _set(["visits", 1, "measures", 1, "id"], "iswt_distance_m"),
        "visits[1].measures[1].id",
        "duplicate measure id",
    ),
    (
        "level bound not a number",
        PHOSP,
        _set(["stratification", 0, "levels", 0, "max"], "59"),
        "stratification[0].levels[0].max",
        "got '59'",
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
    assert expected in found[location]
    assert len(found) == 1, found  # exactly one problem per mistake: no duplicates


def test_three_problems_reported_together() -> None:
    data = raw()
    data["arms"][1]["ratio"] = 0  # field error
    data["visits"][0]["measures"][0]["unitt"] = "m"  # unknown key
    data["eligibility"][2]["field"] = "days_since_covid"  # cross-field error
    with pytest.raises(ProtocolError) as info:
        parse(data)
    locations = sorted(p.location for p in info.value.problems)
    assert locations == [
        f"{SRC}: arms[1].ratio",
        f"{SRC}: eligibility[2].field",
        f"{SRC}: visits[0].measures[0].unitt",
    ]
    assert "3 problems" in str(info.value)


def test_cross_field_problems_reported_when_fields_are_fine() -> None:
    """Semantic problems alone (pydantic would pass every field) are still reported once each."""
    data = raw(TWO_ARM)
    data["randomisation"]["weights"]["sex"] = 1.0
    data["arms"][1]["id"] = "face_to_face"
    found = problems_of(data)
    assert set(found) == {f"{SRC}: randomisation.weights.sex", f"{SRC}: arms[1].id"}


def test_minimisation_needs_factors() -> None:
    data = raw(TWO_ARM)
    data["stratification"] = []
    data["randomisation"]["weights"] = {}
    assert "at least one stratification factor" in problems_of(data)[f"{SRC}: randomisation.method"]


def test_yaml_syntax_error_names_line_and_column() -> None:
    text = _raw_text(PHOSP).replace("  - {code: HAR,", "  - {code: HAR, [", 1)
    line = next(i for i, t in enumerate(text.splitlines(), start=1) if "{code: HAR, [" in t)
    with pytest.raises(ProtocolError) as info:
        parse_protocol(text, SRC)
    (problem,) = info.value.problems
    assert problem.location.startswith(f"{SRC}: line {line}, column ")


def test_duplicate_yaml_key_is_an_error() -> None:
    text = "study: {id: a, title: t, version: '1'}\nstudy: {id: b, title: t, version: '1'}\n"
    with pytest.raises(ProtocolError) as info:
        parse_protocol(text, SRC)
    (problem,) = info.value.problems
    assert problem.location == f"{SRC}: line 2, column 1"
    assert "duplicate key 'study'" in problem.message


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text\n"])
def test_document_must_be_a_mapping(text: str) -> None:
    with pytest.raises(ProtocolError, match="not a protocol") as info:
        parse_protocol(text, SRC)
    assert "must be a YAML mapping" in info.value.problems[0].message


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ProtocolError, match="nope.yaml") as info:
        load_protocol(missing)
    assert info.value.problems[0].location == str(missing)


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match="cannot be read"):
        load_protocol(tmp_path)  # a directory
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ProtocolError, match="bin.yaml"):
        load_protocol(binary)


def test_problem_locations_use_the_file_path(tmp_path: Path) -> None:
    data = raw()
    data["arms"][0]["ratio"] = -1
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ProtocolError) as info:
        load_protocol(path)
    assert [p.location for p in info.value.problems] == [f"{path}: arms[0].ratio"]


def test_protocol_error_survives_pickling() -> None:
    data = raw()
    data["arms"][0]["ratio"] = 0
    with pytest.raises(ProtocolError) as info:
        parse(data)
    again = pickle.loads(pickle.dumps(info.value))
    assert again.problems == info.value.problems


def test_direct_construction_runs_cross_field_checks() -> None:
    with pytest.raises(ValidationError, match="not both"):
        Level(label="x", values=["a"], min=1)
    with pytest.raises(ValidationError, match="required for a choice measure"):
        Measure(id="m", label="M", type="choice")
    with pytest.raises(ValidationError, match="overlaps"):
        StratificationFactor(
            name="a", field="age_years", levels=[Level(label="a", max=60), Level(label="b", min=60)]
        )


# -- strata ----------------------------------------------------------------------------------


def test_level_of_numeric_and_categorical() -> None:
    age, severity = phosp().stratification
    assert age.level_of(59) == "<60"
    assert age.level_of(60) == ">=60"
    assert severity.level_of(4) == "ward"
    assert severity.level_of(9) == "hdu_icu"
    cmv = two_arm().stratification[2]
    assert cmv.level_of("negative") == "negative"


@pytest.mark.parametrize("value", [3, 10, None, "5", True])
def test_level_of_without_match_raises_one_problem(value: object) -> None:
    severity = phosp().stratification[1]
    with pytest.raises(ProtocolError) as info:
        severity.level_of(value)
    (problem,) = info.value.problems
    assert "acute_severity" in problem.location
    assert ("missing" if value is None else repr(value)) in problem.message


def test_boolean_level_does_not_match_integer() -> None:
    factor = StratificationFactor(
        name="icu",
        field="icu_admitted",
        levels=[Level(label="yes", values=[True]), Level(label="no", values=[False])],
    )
    assert factor.level_of(True) == "yes"
    with pytest.raises(ProtocolError):
        factor.level_of(1)


def test_stratum_of_and_key() -> None:
    person = {"age_years": 45, "who_severity": 7, "cmv_serostatus": "positive"}
    assert phosp().stratum_of(person) == {"age_band": "<60", "acute_severity": "hdu_icu"}
    assert phosp().stratum_key(person) == "age_band=<60|acute_severity=hdu_icu"
    assert two_arm().stratum_key(person) == "age_band=<60|acute_severity=hdu_icu|cmv_serostatus=positive"


def test_stratum_key_empty_without_stratification() -> None:
    data = raw()
    data["stratification"] = []
    assert parse(data).stratum_key({}) == ""


def test_stratum_of_reports_every_unmatched_factor() -> None:
    with pytest.raises(ProtocolError) as info:
        phosp().stratum_of({"who_severity": 2})
    assert len(info.value.problems) == 2


@settings(max_examples=60, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=1, max_value=120), min_size=1, max_size=6, unique=True).map(sorted)
)
def test_covering_binning_puts_every_age_in_exactly_one_level(cuts: list[int]) -> None:
    lows: list[int | None] = [None, *cuts]
    highs: list[int | None] = [cut - 1 for cut in cuts] + [None]
    levels = [
        Level(label=f"l{i}", min=low, max=high) for i, (low, high) in enumerate(zip(lows, highs, strict=True))
    ]
    factor = StratificationFactor(name="age", field="age_years", levels=levels)
    for age in range(0, 121):
        matching = [level.label for level in levels if level.matches(age)]
        assert len(matching) == 1
        expected = sum(age >= cut for cut in cuts)
        assert factor.level_of(age) == matching[0] == f"l{expected}"


# -- eligibility -----------------------------------------------------------------------------

ELIGIBLE = {
    "age_years": 59,
    "hospitalised": True,
    "days_since_infection": 120,
    "who_severity": 5,
}


def test_eligible_participant_fails_nothing() -> None:
    assert phosp().failed_criteria(ELIGIBLE) == []
    assert all(met for _, met in phosp().criterion_results(ELIGIBLE))
    assert [c.id for c, _ in phosp().criterion_results(ELIGIBLE)] == [c.id for c in phosp().eligibility]


@pytest.mark.parametrize(
    ("change", "failed"),
    [
        ({"age_years": 17}, ["adult"]),
        ({"hospitalised": False}, ["hospitalised"]),
        ({"days_since_infection": 84}, ["post_covid_syndrome"]),
        ({"who_severity": 10}, ["severity_max"]),
        ({"who_severity": None}, ["severity_min", "severity_max"]),
        ({"hospitalised": 1}, ["hospitalised"]),  # 1 is not true
        ({"age_years": "59"}, ["adult"]),  # wrong type fails, never raises
    ],
)
def test_failed_criteria(change: dict[str, object], failed: list[str]) -> None:
    person = {**ELIGIBLE, **change}
    assert [c.id for c in phosp().failed_criteria(person)] == failed


def test_missing_field_fails_its_criterion() -> None:
    person = {k: v for k, v in ELIGIBLE.items() if k != "age_years"}
    assert [c.id for c in phosp().failed_criteria(person)] == ["adult"]


def test_in_and_not_in_and_dates() -> None:
    in_range = two_arm().eligibility[3]
    assert in_range.is_met(4) and not in_range.is_met(3)
    not_in = Criterion(id="c", description="d", field="cmv_serostatus", op="not_in", value=["unknown"])
    assert not_in.is_met("positive") and not not_in.is_met("unknown") and not not_in.is_met(None)
    since = Criterion(id="c", description="d", field="consent_date", op=">=", value=dt.date(2021, 1, 1))
    assert since.is_met(dt.date(2021, 1, 1)) and not since.is_met(dt.date(2020, 12, 31))
    assert not since.is_met("2021-06-01")


def test_numpy_values_are_numbers() -> None:
    np = pytest.importorskip("numpy")
    assert phosp().failed_criteria({**ELIGIBLE, "age_years": np.int64(70)}) == []
    assert phosp().stratification[0].level_of(np.int64(70)) == ">=60"


# -- lookups ---------------------------------------------------------------------------------


def test_arm_and_visit_lookup() -> None:
    assert phosp().arm("remote").label.startswith("Remote rehabilitation")
    assert phosp().visit("week8").day == 56
    with pytest.raises(NotFoundError, match="no arm 'placebo'"):
        phosp().arm("placebo")
    with pytest.raises(NotFoundError, match="no visit 'week9'"):
        phosp().visit("week9")
    with pytest.raises(NotFoundError, match="no measure"):
        phosp().visit("week8").measure("vo2max")


# -- hashing ---------------------------------------------------------------------------------


def test_canonical_json_round_trips() -> None:
    for protocol in (phosp(), two_arm()):
        assert Protocol.model_validate_json(protocol.canonical_json()) == protocol
    with_date = raw()
    with_date["eligibility"].append(
        {
            "id": "recent",
            "description": "d",
            "field": "consent_date",
            "op": ">=",
            "value": dt.date(2021, 1, 1),
        }
    )
    protocol = parse(with_date)
    assert Protocol.model_validate_json(protocol.canonical_json()) == protocol


def test_hash_changes_with_content_and_ignores_defaults() -> None:
    data = raw()
    base = parse(data).sha256()
    assert base == phosp().sha256()
    data["arms"][0]["ratio"] = 2
    assert parse(data).sha256() != base
    explicit = raw(TWO_ARM)
    implicit = copy.deepcopy(explicit)
    del implicit["randomisation"]["imbalance"]  # the default, spelt out or not
    assert parse(explicit).sha256() == parse(implicit).sha256()


def _shuffled(node: Any, rng: random.Random) -> Any:
    if isinstance(node, dict):
        keys = list(node)
        rng.shuffle(keys)
        return {k: _shuffled(node[k], rng) for k in keys}
    if isinstance(node, list):
        return [_shuffled(item, rng) for item in node]
    return node


@settings(max_examples=20, deadline=None)
@given(rng=st.randoms(use_true_random=False), flow=st.booleans())
def test_key_order_and_layout_do_not_change_the_hash(rng: random.Random, flow: bool) -> None:
    for path, protocol in ((PHOSP, phosp()), (TWO_ARM, two_arm())):
        text = yaml.dump(_shuffled(raw(path), rng), Dumper=DUMPER, sort_keys=False, default_flow_style=flow)
        again = parse_protocol(text, SRC)
        assert again.sha256() == protocol.sha256()
        assert again == protocol
