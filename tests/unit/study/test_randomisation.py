"""Unit tests for the pure allocation algorithms in immunorehab.study.randomisation."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import pytest

from immunorehab.errors import StudyError
from immunorehab.study.randomisation import (
    ArmSpec,
    Block,
    MinimisationDecision,
    block_sequence,
    imbalance_summary,
    minimisation_arm,
    permuted_block_arm,
)

RATIOS = {
    "1:1": (1, 1),
    "1:1:1": (1, 1, 1),
    "2:1": (2, 1),
    "2:1:1": (2, 1, 1),
}
MULTIPLES = (1, 2, 3)

History = list[tuple[Mapping[str, str], str]]


def make_arms(ratios: Sequence[int]) -> list[ArmSpec]:
    return [ArmSpec(f"arm{i}", r) for i, r in enumerate(ratios)]


def flatten(blocks: Sequence[Block]) -> list[str]:
    return [arm for block in blocks for arm in block.arms]


# ------------------------------------------------------------------ permuted blocks


@pytest.mark.parametrize("name", sorted(RATIOS))
def test_every_block_holds_each_arm_m_times_ratio(name: str) -> None:
    arms = make_arms(RATIOS[name])
    total = sum(a.ratio for a in arms)
    blocks = block_sequence(seed=11, stratum="site=LEI", arms=arms, block_multiples=MULTIPLES, n=600)
    for block in blocks:
        m, rest = divmod(block.size, total)
        assert rest == 0 and m in MULTIPLES
        assert len(block.arms) == block.size
        assert Counter(block.arms) == {a.id: m * a.ratio for a in arms}


@pytest.mark.parametrize("name", sorted(RATIOS))
def test_balance_is_exact_at_every_block_end_and_never_far_off_inside(name: str) -> None:
    arms = make_arms(RATIOS[name])
    total = sum(a.ratio for a in arms)
    blocks = block_sequence(seed=5, stratum="s", arms=arms, block_multiples=MULTIPLES, n=900)
    running: Counter[str] = Counter()
    allocated = 0
    for block in blocks:
        for arm in block.arms:
            running[arm] += 1
            allocated += 1
            # inside a block an arm is off its target share by less than one block's share
            for a in arms:
                assert abs(running[a.id] * total - allocated * a.ratio) <= max(MULTIPLES) * a.ratio * total
        for a in arms:
            assert running[a.id] * total == allocated * a.ratio
    assert allocated >= 900


@pytest.mark.parametrize("name", sorted(RATIOS))
def test_block_sizes_vary_over_all_multiples(name: str) -> None:
    arms = make_arms(RATIOS[name])
    total = sum(a.ratio for a in arms)
    blocks = block_sequence(seed=3, stratum="s", arms=arms, block_multiples=MULTIPLES, n=100 * 3 * total)
    sizes = Counter(b.size for b in blocks)
    assert set(sizes) == {m * total for m in MULTIPLES}
    # m is drawn uniformly: each multiple has roughly a third of the blocks
    for count in sizes.values():
        assert 0.2 < count / len(blocks) < 0.47


def test_single_multiple_gives_fixed_block_size() -> None:
    arms = make_arms((2, 1, 1))
    blocks = block_sequence(seed=1, stratum="", arms=arms, block_multiples=[2], n=80)
    assert {b.size for b in blocks} == {8}


def test_block_order_is_random_not_fixed() -> None:
    arms = make_arms((1, 1))
    firsts = Counter(
        block_sequence(seed=9, stratum=f"stratum-{i}", arms=arms, block_multiples=[1], n=1)[0].arms
        for i in range(400)
    )
    assert set(firsts) == {("arm0", "arm1"), ("arm1", "arm0")}
    assert 150 < firsts[("arm0", "arm1")] < 250


def test_reproducible_from_seed_and_sensitive_to_seed() -> None:
    arms = make_arms((1, 1))
    kwargs = {"stratum": "site=LEI", "arms": arms, "block_multiples": MULTIPLES, "n": 60}
    first = flatten(block_sequence(seed=123, **kwargs))  # type: ignore[arg-type]
    again = flatten(block_sequence(seed=123, **kwargs))  # type: ignore[arg-type]
    other = flatten(block_sequence(seed=124, **kwargs))  # type: ignore[arg-type]
    assert first == again
    assert first[:60] != other[:60]


def test_strata_have_independent_lists() -> None:
    arms = make_arms((1, 1))
    lei = flatten(block_sequence(seed=1, stratum="site=LEI", arms=arms, block_multiples=MULTIPLES, n=60))
    gla = flatten(block_sequence(seed=1, stratum="site=GLA", arms=arms, block_multiples=MULTIPLES, n=60))
    assert lei[:60] != gla[:60]
    # Interleaved enrolment: LEI's allocations do not depend on how many GLA participants came between.
    for position in range(60):
        permuted_block_arm(
            seed=1, stratum="site=GLA", position=position, arms=arms, block_multiples=MULTIPLES
        )
        got = permuted_block_arm(
            seed=1, stratum="site=LEI", position=position, arms=arms, block_multiples=MULTIPLES
        )
        assert got == lei[position]


def test_prefix_property() -> None:
    arms = make_arms((2, 1))
    short = block_sequence(seed=8, stratum="x", arms=arms, block_multiples=MULTIPLES, n=10)
    long = block_sequence(seed=8, stratum="x", arms=arms, block_multiples=MULTIPLES, n=100)
    assert long[: len(short)] == short
    assert sum(b.size for b in short) >= 10
    assert sum(b.size for b in short[:-1]) < 10


def test_n_zero_gives_no_blocks() -> None:
    assert block_sequence(seed=1, stratum="x", arms=make_arms((1, 1)), block_multiples=[1], n=0) == []


def test_multiples_order_and_duplicates_do_not_matter() -> None:
    arms = make_arms((1, 1))
    a = block_sequence(seed=4, stratum="x", arms=arms, block_multiples=[1, 2, 3], n=50)
    b = block_sequence(seed=4, stratum="x", arms=arms, block_multiples=[3, 1, 2, 2], n=50)
    assert a == b


def test_permuted_block_arm_matches_the_block_list() -> None:
    arms = make_arms((2, 1, 1))
    flat = flatten(block_sequence(seed=77, stratum="pem=yes", arms=arms, block_multiples=MULTIPLES, n=200))
    got = [
        permuted_block_arm(seed=77, stratum="pem=yes", position=p, arms=arms, block_multiples=MULTIPLES)
        for p in range(200)
    ]
    assert got == flat[:200]


def test_permuted_block_arm_far_position_is_consistent() -> None:
    arms = make_arms((1, 1))
    flat = flatten(block_sequence(seed=2, stratum="s", arms=arms, block_multiples=MULTIPLES, n=10_001))
    got = permuted_block_arm(seed=2, stratum="s", position=10_000, arms=arms, block_multiples=MULTIPLES)
    assert got == flat[10_000]
    counts = Counter(flat[:10_000])
    assert abs(counts["arm0"] - counts["arm1"]) <= 3  # balanced up to the open block


def test_golden_values_pin_the_algorithm() -> None:
    """Changing the key derivation, bit generator or shuffle changes trial allocations: never silently."""
    arms = [ArmSpec("rehab", 2), ArmSpec("usual_care", 1)]
    blocks = block_sequence(
        seed=20250101, stratum="site=LEI|pem=yes", arms=arms, block_multiples=[1, 2, 3], n=20
    )
    assert [(b.size, "".join(a[0] for a in b.arms)) for b in blocks] == [
        (9, "rurrurrur"),
        (6, "rururr"),
        (9, "ruurrrrur"),
    ]
    arms3 = [ArmSpec("a", 1), ArmSpec("b", 1), ArmSpec("c", 1)]
    got = [
        permuted_block_arm(seed=42, stratum="", position=p, arms=arms3, block_multiples=[1, 2])
        for p in range(12)
    ]
    assert got == ["a", "c", "b", "c", "a", "b", "b", "a", "c", "b", "a", "c"]
    decision = minimisation_arm(
        seed=99, sequence=5, arms=arms3, levels={"site": "LEI"}, history=[], weights={}, probability=0.8,
        imbalance="range",
    )  # fmt: skip
    assert decision.arm == "b"
    assert decision.random_draw == pytest.approx(0.3418504836332653, abs=1e-15)


def test_same_allocations_in_another_process_with_another_hash_seed() -> None:
    code = (
        "from immunorehab.study.randomisation import ArmSpec, block_sequence, minimisation_arm\n"
        "arms = [ArmSpec('rehab', 1), ArmSpec('control', 1)]\n"
        "b = block_sequence(seed=5, stratum='site=LEI', arms=arms, block_multiples=[1, 2, 3], n=30)\n"
        "d = minimisation_arm(seed=5, sequence=3, arms=arms, levels={'sex': 'female'}, history=[],"
        " weights={}, probability=0.8, imbalance='range')\n"
        "print(''.join(a[0] for blk in b for a in blk.arms), d.arm, repr(d.random_draw))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    arms = [ArmSpec("rehab", 1), ArmSpec("control", 1)]
    b = block_sequence(seed=5, stratum="site=LEI", arms=arms, block_multiples=[1, 2, 3], n=30)
    d = minimisation_arm(
        seed=5, sequence=3, arms=arms, levels={"sex": "female"}, history=[], weights={}, probability=0.8,
        imbalance="range",
    )  # fmt: skip
    assert out.stdout.split() == ["".join(a[0] for blk in b for a in blk.arms), d.arm, repr(d.random_draw)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arms": []}, r"arms must list at least one ArmSpec"),
        ({"arms": [ArmSpec("a", 1), ArmSpec("a", 2)]}, r"arms\[1\]\.id 'a' is a duplicate"),
        ({"arms": [("a", 1)]}, r"arms\[0\] must be an ArmSpec"),
        ({"block_multiples": []}, r"block_multiples must list at least one integer"),
        ({"block_multiples": [1, 0]}, r"block_multiples\[1\] must be an integer >= 1; got 0"),
        ({"block_multiples": [1.5]}, r"block_multiples\[0\] must be an integer; got 1.5"),
        ({"n": -1}, r"n must be an integer >= 0; got -1"),
        ({"seed": "7"}, r"seed must be an integer; got '7'"),
        ({"stratum": 3}, r"stratum must be a string; got 3"),
    ],
)
def test_block_sequence_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "seed": 1,
        "stratum": "s",
        "arms": make_arms((1, 1)),
        "block_multiples": [1, 2],
        "n": 4,
    }
    args.update(kwargs)
    with pytest.raises(StudyError, match=message):
        block_sequence(**args)  # type: ignore[arg-type]


def test_permuted_block_arm_rejects_negative_position() -> None:
    with pytest.raises(StudyError, match=r"position must be an integer >= 0; got -1"):
        permuted_block_arm(seed=1, stratum="s", position=-1, arms=make_arms((1, 1)), block_multiples=[1])


@pytest.mark.parametrize("ratio", [0, -1, 1.5, True])
def test_armspec_rejects_bad_ratio(ratio: object) -> None:
    with pytest.raises(StudyError, match=r"ArmSpec\.ratio of arm 'x' must be an integer >= 1"):
        ArmSpec("x", ratio)  # type: ignore[arg-type]


def test_armspec_rejects_empty_id() -> None:
    with pytest.raises(StudyError, match=r"ArmSpec\.id must be a non-empty string"):
        ArmSpec("", 1)


# ---------------------------------------------------------------------- minimisation


def simulate_minimisation(
    *,
    arms: Sequence[ArmSpec],
    factors: Mapping[str, Sequence[str]],
    n: int,
    probability: float,
    seed: int,
    imbalance: str = "range",
    weights: Mapping[str, float] | None = None,
) -> tuple[History, list[MinimisationDecision]]:
    population = np.random.default_rng(seed)
    history: History = []
    decisions = []
    for i in range(n):
        levels = {f: str(population.choice(list(values))) for f, values in factors.items()}
        decision = minimisation_arm(
            seed=seed,
            sequence=i,
            arms=arms,
            levels=levels,
            history=history,
            weights=weights or {},
            probability=probability,
            imbalance=imbalance,  # type: ignore[arg-type]
        )
        decisions.append(decision)
        history.append((levels, decision.arm))
    return history, decisions


def simple_randomisation(
    *, arms: Sequence[ArmSpec], factors: Mapping[str, Sequence[str]], n: int, seed: int
) -> History:
    population = np.random.default_rng(seed)
    coin = np.random.default_rng(seed + 10_000)
    weights = np.array([a.ratio for a in arms], dtype=float)
    history: History = []
    for _ in range(n):
        levels = {f: str(population.choice(list(values))) for f, values in factors.items()}
        history.append((levels, arms[int(coin.choice(len(arms), p=weights / weights.sum()))].id))
    return history


def max_imbalance(history: History, arms: Sequence[ArmSpec]) -> float:
    return max(b.imbalance for b in imbalance_summary(history, arms))


@pytest.mark.parametrize("ratios", [(1, 1), (1, 1, 1)])
@pytest.mark.parametrize("imbalance", ["range", "variance"])
def test_deterministic_minimisation_keeps_each_level_within_one(
    ratios: tuple[int, ...], imbalance: str
) -> None:
    arms = make_arms(ratios)
    history, _ = simulate_minimisation(
        arms=arms, factors={"site": ["LEI", "GLA", "BRI", "NOT"]}, n=500, probability=1.0, seed=31,
        imbalance=imbalance,
    )  # fmt: skip
    assert max_imbalance(history, arms) <= 1
    # and at every step, not only at the end
    for stop in range(1, 500, 37):
        assert max_imbalance(history[:stop], arms) <= 1


def test_minimisation_with_random_element_beats_simple_randomisation() -> None:
    arms = make_arms((1, 1))
    factors = {"site": ["LEI", "GLA", "BRI"], "sex": ["female", "male"], "pem": ["yes", "no"]}
    minimised = []
    simple = []
    for seed in range(3):
        history, _ = simulate_minimisation(arms=arms, factors=factors, n=300, probability=0.8, seed=seed)
        minimised.append(max_imbalance(history, arms))
        simple.append(max_imbalance(simple_randomisation(arms=arms, factors=factors, n=300, seed=seed), arms))
    assert max(minimised) <= 6
    assert np.mean(simple) > 10  # simple randomisation: ~sqrt(n_level) per level
    assert np.mean(minimised) < 0.4 * np.mean(simple)


def test_minimisation_is_reproducible() -> None:
    arms = make_arms((2, 1, 1))
    factors = {"site": ["LEI", "GLA"], "cmv": ["positive", "negative"]}
    first, d1 = simulate_minimisation(arms=arms, factors=factors, n=120, probability=0.8, seed=4)
    second, d2 = simulate_minimisation(arms=arms, factors=factors, n=120, probability=0.8, seed=4)
    other, _ = simulate_minimisation(arms=arms, factors=factors, n=120, probability=0.8, seed=5)
    assert first == second and d1 == d2
    assert [arm for _, arm in first] != [arm for _, arm in other]


def test_ratio_two_to_one_gives_close_to_two_to_one() -> None:
    arms = [ArmSpec("rehab", 2), ArmSpec("usual_care", 1)]
    factors = {"site": ["LEI", "GLA", "BRI"], "sex": ["female", "male"]}
    history, _ = simulate_minimisation(arms=arms, factors=factors, n=300, probability=0.8, seed=12)
    share = sum(arm == "rehab" for _, arm in history) / len(history)
    assert 0.62 < share < 0.72
    assert max_imbalance(history, arms) <= 6


def test_random_element_fires_at_about_one_minus_p() -> None:
    arms = make_arms((1, 1))
    factors = {"site": ["LEI", "GLA", "BRI"], "sex": ["female", "male"]}
    _, decisions = simulate_minimisation(arms=arms, factors=factors, n=300, probability=0.8, seed=21)
    contested = [d for d in decisions if not d.all_tied]
    assert len(contested) > 150
    against = sum(d.arm not in d.minimising_arms for d in contested) / len(contested)
    assert 0.10 <= against <= 0.30
    for d in contested:
        assert sum(d.probabilities[a] for a in d.minimising_arms) == pytest.approx(0.8)


def test_probability_one_always_follows_the_minimising_arm() -> None:
    arms = make_arms((1, 1, 1))
    _, decisions = simulate_minimisation(
        arms=arms, factors={"site": ["A", "B"], "sex": ["f", "m"]}, n=200, probability=1.0, seed=2
    )
    assert all(d.arm in d.minimising_arms for d in decisions)
    assert any(d.deterministic for d in decisions)
    assert all(d.deterministic == (len(d.minimising_arms) == 1) for d in decisions)


def test_ties_are_broken_at_random_weighted_by_ratio() -> None:
    arms = [ArmSpec("rehab", 2), ArmSpec("usual_care", 1)]
    chosen = Counter(
        minimisation_arm(
            seed=7,
            sequence=i,
            arms=arms,
            levels={},
            history=[],
            weights={},
            probability=1.0,
            imbalance="range",
        ).arm
        for i in range(600)
    )
    assert 0.6 < chosen["rehab"] / 600 < 0.73


def test_ties_between_equal_arms_are_not_always_the_first_arm() -> None:
    arms = make_arms((1, 1, 1))
    _, decisions = simulate_minimisation(
        arms=arms, factors={"site": ["A", "B"]}, n=300, probability=1.0, seed=6
    )
    tied = [d for d in decisions if len(d.minimising_arms) > 1]
    assert len(tied) > 50
    picks = Counter(d.minimising_arms.index(d.arm) for d in tied)
    assert picks[0] < 0.6 * len(tied)
    assert len(picks) >= 2


def test_no_factors_is_random_by_ratio() -> None:
    arms = make_arms((1, 1))
    decision = minimisation_arm(
        seed=1, sequence=0, arms=arms, levels={}, history=[({}, "arm0")], weights={}, probability=0.8,
        imbalance="range",
    )  # fmt: skip
    assert decision.all_tied and decision.scores == {"arm0": 0.0, "arm1": 0.0}
    assert decision.probabilities == {"arm0": 0.5, "arm1": 0.5}
    assert not decision.deterministic


def test_scores_by_hand_range_and_variance_with_weights() -> None:
    arms = [ArmSpec("A", 1), ArmSpec("B", 1)]
    history: History = [
        ({"site": "L", "sex": "f"}, "A"),
        ({"site": "L", "sex": "m"}, "B"),
        ({"site": "M", "sex": "f"}, "A"),
    ]
    common = {"seed": 0, "sequence": 3, "arms": arms, "levels": {"site": "L", "sex": "f"}, "history": history}
    by_range = minimisation_arm(**common, weights={"site": 2.0}, probability=1.0, imbalance="range")  # type: ignore[arg-type]
    assert by_range.scores == {"A": 5.0, "B": 3.0}
    assert by_range.minimising_arms == ("B",) and by_range.arm == "B" and by_range.deterministic
    by_var = minimisation_arm(**common, weights={"site": 2.0}, probability=1.0, imbalance="variance")  # type: ignore[arg-type]
    assert by_var.scores == pytest.approx({"A": 2.75, "B": 0.75})


def test_scores_are_divided_by_ratio() -> None:
    arms = [ArmSpec("A", 2), ArmSpec("B", 1)]
    decision = minimisation_arm(
        seed=0, sequence=1, arms=arms, levels={"f": "x"}, history=[({"f": "x"}, "A")], weights={},
        probability=0.75, imbalance="range",
    )  # fmt: skip
    assert decision.scores == {"A": 1.0, "B": 0.5}
    assert decision.minimising_arms == ("B",)
    assert decision.probabilities == pytest.approx({"A": 0.25, "B": 0.75})


def test_other_levels_and_extra_history_keys_do_not_count() -> None:
    arms = make_arms((1, 1))
    history: History = [({"site": "GLA", "extra": "z"}, "arm0")] * 5
    decision = minimisation_arm(
        seed=0, sequence=5, arms=arms, levels={"site": "LEI"}, history=history, weights={}, probability=0.8,
        imbalance="range",
    )  # fmt: skip
    assert decision.all_tied


def test_zero_weight_factor_is_ignored() -> None:
    arms = make_arms((1, 1))
    history: History = [({"site": "L", "sex": "f"}, "arm0")]
    decision = minimisation_arm(
        seed=0, sequence=1, arms=arms, levels={"site": "L", "sex": "f"}, history=history,
        weights={"site": 0.0, "sex": 0.0}, probability=0.8, imbalance="range",
    )  # fmt: skip
    assert decision.all_tied


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arms": []}, r"arms must list at least one ArmSpec"),
        ({"probability": 0.5}, r"probability must be in \(0\.5, 1\]; got 0\.5"),
        ({"probability": 1.2}, r"probability must be in \(0\.5, 1\]; got 1\.2"),
        ({"probability": "0.8"}, r"probability must be a number"),
        ({"sequence": -3}, r"sequence must be an integer >= 0; got -3"),
        ({"weights": {"age": 1.0}}, r"weights name unknown factor\(s\) \['age'\].*\['site'\]"),
        ({"weights": {"site": -1.0}}, r"weights\['site'\] must be a finite number >= 0; got -1\.0"),
        ({"weights": {"site": float("nan")}}, r"weights\['site'\] must be a finite number >= 0"),
        ({"imbalance": "max"}, r"imbalance must be 'range' or 'variance'; got 'max'"),
        ({"history": [({"site": "L"}, "nope")]}, r"history\[0\] has arm 'nope'"),
        ({"history": [({"sex": "f"}, "arm0")]}, r"history\[0\] has no level for factor 'site'"),
        ({"levels": {"site": 1}}, r"levels\['site'\] must be a string"),
    ],
)
def test_minimisation_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "seed": 1,
        "sequence": 0,
        "arms": make_arms((1, 1)),
        "levels": {"site": "L"},
        "history": [],
        "weights": {},
        "probability": 0.8,
        "imbalance": "range",
    }
    args.update(kwargs)
    with pytest.raises(StudyError, match=message):
        minimisation_arm(**args)  # type: ignore[arg-type]


# ------------------------------------------------------------------ imbalance summary


def test_imbalance_summary_counts_and_ratio_adjusted_range() -> None:
    arms = [ArmSpec("A", 2), ArmSpec("B", 1)]
    assignments: History = [
        ({"site": "L", "sex": "f"}, "A"),
        ({"site": "L", "sex": "m"}, "A"),
        ({"site": "L", "sex": "f"}, "B"),
        ({"site": "M", "sex": "f"}, "B"),
    ]
    summary = imbalance_summary(assignments, arms)
    assert [(b.factor, b.level, b.counts, b.imbalance) for b in summary] == [
        ("sex", "f", {"A": 1, "B": 2}, 1.5),
        ("sex", "m", {"A": 1, "B": 0}, 0.5),
        ("site", "L", {"A": 2, "B": 1}, 0.0),
        ("site", "M", {"A": 0, "B": 1}, 1.0),
    ]


def test_imbalance_summary_rejects_unknown_arm() -> None:
    with pytest.raises(StudyError, match=r"assignments\[0\] has arm 'C'"):
        imbalance_summary([({"site": "L"}, "C")], [ArmSpec("A", 1)])
