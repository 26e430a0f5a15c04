"""Pure allocation algorithms: stratified permuted blocks and Pocock–Simon minimisation.

Nothing here touches a database or a file: the store calls these functions inside a
locked transaction and records the result. Every allocation is reproducible from the
study seed and the enrolment order alone, in any process and on any machine:

* Each random stream is keyed by a tuple such as ``("blocks", seed, stratum)``, encoded
  as canonical JSON (UTF-8) and hashed with SHA-256; the digest seeds a
  :class:`numpy.random.SeedSequence` feeding an explicit :class:`numpy.random.PCG64`.
  Python's ``hash()`` (salted per process) is never used.
* Only raw 64-bit PCG64 outputs are consumed (rejection-sampled integers, 53-bit
  uniforms, explicit Fisher–Yates), so allocations do not depend on how a numpy release
  implements ``Generator.integers``/``permutation`` (numpy only promises stable bit
  generator streams) nor on which bit generator ``default_rng`` picks.

References
----------
Schulz KF, Grimes DA. Lancet 2002;359:966-970 (unpredictable block sizes).
Taves DR. Minimization. Clin Pharmacol Ther 1974;15:443-453.
Pocock SJ, Simon R. Sequential treatment assignment with balancing for prognostic
factors in the controlled clinical trial. Biometrics 1975;31:103-115.
Han B, Enas NH, McEntegart D. Randomization by minimization for unbalanced treatment
allocation. Stat Med 2009;28:3329-3346.
Kuznetsova OM, Tymofyeyev Y. Preserving the allocation ratio at every allocation with
biased coin randomization and minimization. Stat Med 2012;31:701-723.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from immunorehab.errors import StudyError

__all__ = [
    "ArmSpec",
    "Block",
    "Imbalance",
    "LevelBalance",
    "MinimisationDecision",
    "block_sequence",
    "imbalance_summary",
    "minimisation_arm",
    "permuted_block_arm",
]

Imbalance = Literal["range", "variance"]

_DOMAIN = "immunorehab.randomisation/v1"
_TWO_64 = 1 << 64
_CHUNK = 256
_TIE_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class ArmSpec:
    """One treatment arm: its protocol ``id`` and integer ratio weight >= 1 (2 and 1 give 2:1)."""

    id: str
    ratio: int

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise StudyError(f"ArmSpec.id must be a non-empty string; got {self.id!r}.")
        if isinstance(self.ratio, bool) or not isinstance(self.ratio, int) or self.ratio < 1:
            raise StudyError(
                f"ArmSpec.ratio of arm {self.id!r} must be an integer >= 1; got {self.ratio!r}. "
                "Write unequal allocation as whole numbers, e.g. 2 and 1 for 2:1."
            )


@dataclass(frozen=True, slots=True)
class Block:
    """One permuted block: ``size == m * sum(ratios)`` arm ids in allocation order."""

    size: int
    arms: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.size != len(self.arms):
            raise StudyError(f"Block.size is {self.size} but the block lists {len(self.arms)} arms.")


@dataclass(frozen=True, slots=True)
class MinimisationDecision:
    """The outcome of one minimisation step, with everything needed to audit it.

    Attributes
    ----------
    arm : str
        The allocated arm.
    scores : dict of str to float
        Total weighted imbalance if the participant were given each arm (arm order).
    minimising_arms : tuple of str
        The arm(s) with the lowest score (several when tied).
    random_draw : float
        The uniform draw in [0, 1) that selected ``arm`` (see :func:`minimisation_arm`).
    deterministic : bool
        True when the draw could not have changed the outcome: only one arm had a
        non-zero probability (``probability == 1`` and a single minimising arm).
    all_tied : bool
        True when every arm had the same score (arm chosen at random by ratio).
    probabilities : dict of str to float
        Each arm's allocation probability at this step (sums to 1).
    """

    arm: str
    scores: dict[str, float]
    minimising_arms: tuple[str, ...]
    random_draw: float
    deterministic: bool
    all_tied: bool = False
    probabilities: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LevelBalance:
    """Counts per arm (arm order, zeros included) for one level of one factor.

    ``imbalance`` is the range (max - min) across arms of ``count / ratio``: 0 is
    perfect balance for the allocation ratio, 1 is one participant apart for 1:1.
    """

    factor: str
    level: str
    counts: dict[str, int]
    imbalance: float


class _Stream:
    """Sequential reader of the raw 64-bit outputs of a PCG64 stream keyed by ``key``."""

    __slots__ = ("_bitgen", "_buffer", "_next")

    def __init__(self, *key: str | int) -> None:
        material = json.dumps([_DOMAIN, *key], ensure_ascii=False, separators=(",", ":"))
        digest = hashlib.sha256(material.encode("utf-8")).digest()
        entropy = int.from_bytes(digest, "big")
        self._bitgen = np.random.PCG64(np.random.SeedSequence(entropy))
        self._buffer: list[int] = []
        self._next = 0

    def _refill(self) -> None:
        # Over-reading is harmless: each stream is private to one function call.
        self._buffer = [int(v) for v in self._bitgen.random_raw(_CHUNK).tolist()]
        self._next = 0

    def below(self, n: int) -> int:
        """Unbiased integer in ``[0, n)`` by rejection sampling (n < 2**64)."""
        limit = _TWO_64 - (_TWO_64 % n)
        while True:
            if self._next == len(self._buffer):
                self._refill()
            value = self._buffer[self._next]
            self._next += 1
            if value < limit:
                return value % n

    def uniform(self) -> float:
        """Uniform float in ``[0, 1)`` from the top 53 bits of one raw output."""
        if self._next == len(self._buffer):
            self._refill()
        value = self._buffer[self._next]
        self._next += 1
        return (value >> 11) * 2.0**-53


def _check_int(name: str, value: object, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise StudyError(f"{name} must be an integer; got {value!r} ({type(value).__name__}).")
    number = int(value)
    if minimum is not None and number < minimum:
        raise StudyError(f"{name} must be an integer >= {minimum}; got {number}.")
    return number


def _check_arms(arms: Sequence[ArmSpec]) -> tuple[ArmSpec, ...]:
    specs = tuple(arms)
    if not specs:
        raise StudyError("arms must list at least one ArmSpec(id, ratio); got an empty sequence.")
    seen: set[str] = set()
    for i, arm in enumerate(specs):
        if not isinstance(arm, ArmSpec):
            raise StudyError(f"arms[{i}] must be an ArmSpec; got {arm!r}.")
        if arm.id in seen:
            raise StudyError(f"arms[{i}].id {arm.id!r} is a duplicate; arm ids must be unique.")
        seen.add(arm.id)
    return specs


def _check_multiples(block_multiples: Sequence[int]) -> tuple[int, ...]:
    values = [_check_int(f"block_multiples[{i}]", m, minimum=1) for i, m in enumerate(block_multiples)]
    if not values:
        raise StudyError(
            "block_multiples must list at least one integer >= 1 (e.g. [1, 2, 3]); got an empty sequence."
        )
    return tuple(sorted(set(values)))


def _check_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise StudyError(f"{name} must be a string; got {value!r} ({type(value).__name__}).")
    return value


def _iter_blocks(
    seed: int, stratum: str, arms: tuple[ArmSpec, ...], multiples: tuple[int, ...]
) -> Iterator[list[str]]:
    """The stratum's infinite list of blocks (each an arm-id list), generated lazily."""
    stream = _Stream("blocks", seed, stratum)
    below = stream.below
    while True:
        m = multiples[below(len(multiples))]
        pool = [arm.id for arm in arms for _ in range(m * arm.ratio)]
        for i in range(len(pool) - 1, 0, -1):  # Fisher–Yates
            j = below(i + 1)
            pool[i], pool[j] = pool[j], pool[i]
        yield pool


def block_sequence(
    *, seed: int, stratum: str, arms: Sequence[ArmSpec], block_multiples: Sequence[int], n: int
) -> list[Block]:
    """The first blocks of a stratum's allocation list, covering at least ``n`` positions.

    Each block has size ``m * sum(ratios)``, with ``m`` drawn uniformly from the
    distinct ``block_multiples``, and holds each arm exactly ``m * ratio`` times in a
    uniformly random order: balance is exact at every block end while varying sizes
    keep the next allocation hard to guess (Schulz & Grimes 2002).

    Parameters
    ----------
    seed : int
        The study's randomisation seed.
    stratum : str
        Stratum key (e.g. ``"site=LEI|pem=yes"``; ``""`` for an unstratified study).
        The list depends on ``(seed, stratum)`` only: never on other strata or on
        ``n``, so a shorter result is always a prefix of a longer one.
    arms : sequence of ArmSpec
        Arms in protocol order (the order is part of the reproducible definition).
    block_multiples : sequence of int
        Allowed multiples ``m`` (each >= 1); order and duplicates are ignored.
    n : int
        Number of positions to cover (>= 0); 0 gives an empty list.

    Returns
    -------
    list of Block
        The shortest prefix of the stratum's block list with ``sum(sizes) >= n``.

    Raises
    ------
    StudyError
        If ``arms`` is empty or has duplicate ids, a multiple is < 1, or ``n < 0``.

    Examples
    --------
    >>> arms = [ArmSpec("rehab", 1), ArmSpec("usual_care", 1)]
    >>> blocks = block_sequence(seed=7, stratum="LEI", arms=arms, block_multiples=[1, 2], n=10)
    >>> all(b.arms.count("rehab") == b.size // 2 for b in blocks)
    True
    """
    specs, multiples = _check_arms(arms), _check_multiples(block_multiples)
    seed, stratum = _check_int("seed", seed), _check_str("stratum", stratum)
    n = _check_int("n", n, minimum=0)
    blocks: list[Block] = []
    covered = 0
    generator = _iter_blocks(seed, stratum, specs, multiples)
    while covered < n:
        pool = next(generator)
        blocks.append(Block(size=len(pool), arms=tuple(pool)))
        covered += len(pool)
    return blocks


def permuted_block_arm(
    *, seed: int, stratum: str, position: int, arms: Sequence[ArmSpec], block_multiples: Sequence[int]
) -> str:
    """The arm for the ``position``-th (0-based) participant randomised in ``stratum``.

    Equivalent to indexing the flattened :func:`block_sequence`, without building
    it: blocks are generated one at a time (under 10 ms for position 10,000 with 1:1
    and multiples ``[1, 2, 3]``).

    Parameters
    ----------
    seed, stratum, arms, block_multiples
        As for :func:`block_sequence`.
    position : int
        0-based count of participants already randomised in this stratum.

    Returns
    -------
    str
        The arm id.

    Raises
    ------
    StudyError
        If an argument is invalid (as :func:`block_sequence`, or ``position < 0``).
    """
    specs, multiples = _check_arms(arms), _check_multiples(block_multiples)
    seed, stratum = _check_int("seed", seed), _check_str("stratum", stratum)
    remaining = _check_int("position", position, minimum=0)
    for pool in _iter_blocks(seed, stratum, specs, multiples):
        if remaining < len(pool):
            return pool[remaining]
        remaining -= len(pool)
    raise AssertionError("unreachable: the block generator is infinite")  # pragma: no cover


def _imbalance(values: Sequence[float], kind: Imbalance) -> float:
    if kind == "range":
        return max(values) - min(values)
    mean = math.fsum(values) / len(values)
    return math.fsum((v - mean) ** 2 for v in values) / len(values)


def _check_minimisation_args(
    levels: Mapping[str, str], weights: Mapping[str, float], probability: float, imbalance: str
) -> dict[str, float]:
    """Validate and return the weight of every factor in ``levels`` (default 1.0)."""
    if isinstance(probability, bool) or not isinstance(probability, int | float):
        raise StudyError(f"probability must be a number in (0.5, 1]; got {probability!r}.")
    if not 0.5 < probability <= 1.0:
        raise StudyError(
            f"probability must be in (0.5, 1]; got {probability}. Typical values are 0.75-0.8 "
            "(minimisation with a random element) or 1.0 (deterministic minimisation)."
        )
    if imbalance not in ("range", "variance"):
        raise StudyError(f"imbalance must be 'range' or 'variance'; got {imbalance!r}.")
    for factor, level in levels.items():
        _check_str(f"levels[{factor!r}]", level)
    unknown = sorted(set(weights) - set(levels))
    if unknown:
        raise StudyError(
            f"weights name unknown factor(s) {unknown}; the participant's factors are "
            f"{sorted(levels)}. Give a weight only for a factor present in levels."
        )
    resolved: dict[str, float] = {}
    for factor in levels:
        w = weights.get(factor, 1.0)
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w < 0:
            raise StudyError(f"weights[{factor!r}] must be a finite number >= 0; got {w!r}.")
        resolved[factor] = float(w)
    return resolved


def _matching_counts(
    levels: Mapping[str, str],
    history: Sequence[tuple[Mapping[str, str], str]],
    index: Mapping[str, int],
) -> dict[str, list[int]]:
    """Per factor: previous participants sharing the new participant's level, per arm."""
    counts = {factor: [0] * len(index) for factor in levels}
    for i, (past_levels, past_arm) in enumerate(history):
        k = index.get(past_arm)
        if k is None:
            raise StudyError(
                f"history[{i}] has arm {past_arm!r}, which is not one of the arms {list(index)}."
            )
        for factor, level in levels.items():
            if factor not in past_levels:
                raise StudyError(
                    f"history[{i}] has no level for factor {factor!r}; every previous participant "
                    f"needs a level for each minimisation factor {sorted(levels)}."
                )
            if past_levels[factor] == level:
                counts[factor][k] += 1
    return counts


def _allocation_probabilities(
    specs: tuple[ArmSpec, ...], minimising: tuple[str, ...], probability: float
) -> dict[str, float]:
    if len(minimising) == len(specs):
        total = sum(a.ratio for a in specs)
        return {a.id: a.ratio / total for a in specs}
    best = [a for a in specs if a.id in minimising]
    rest = [a for a in specs if a.id not in minimising]
    best_total = sum(a.ratio for a in best)
    rest_total = sum(a.ratio for a in rest)
    probs = {a.id: probability * a.ratio / best_total for a in best}
    probs.update({a.id: (1.0 - probability) * a.ratio / rest_total for a in rest})
    return {a.id: probs[a.id] for a in specs}


def minimisation_arm(
    *,
    seed: int,
    sequence: int,
    arms: Sequence[ArmSpec],
    levels: Mapping[str, str],
    history: Sequence[tuple[Mapping[str, str], str]],
    weights: Mapping[str, float],
    probability: float,
    imbalance: Imbalance,
) -> MinimisationDecision:
    r"""Allocate one participant by Pocock–Simon minimisation with a random element.

    With :math:`n_{f,k}` previous participants sharing the new participant's level of
    factor :math:`f` in arm :math:`k`, candidate arm :math:`a` gives ratio-adjusted
    counts :math:`x_{f,k}(a) = (n_{f,k} + [k = a]) / r_k` (balance in proportion to the
    allocation ratio, as discussed by Han et al. 2009) and the score

    .. math:: G(a) = \sum_f w_f \, D(x_{f,\cdot}(a)),

    :math:`D` being the range or population variance across arms (Pocock & Simon
    1975). Arms with the lowest :math:`G` (within 1e-9) are minimising. They share
    probability ``probability`` in proportion to their ratios (random, ratio-weighted
    tie-breaking) and the other arms share ``1 - probability`` likewise (Taves 1974;
    Pocock & Simon's random element); if all arms tie (first participant, no factors)
    each gets ``r_a / sum(r)``.

    Arms occupy consecutive sub-intervals of [0, 1) in arm order; the one containing
    :math:`u` wins. :math:`u` comes from a stream keyed by ``(seed, "minimisation",
    sequence)``, so replaying the same history gives the same decision. With unequal
    ratios the overall allocation approaches the target ratio, but the per-step
    unconditional probability is not exactly ``r_a / sum(r)`` (Kuznetsova &
    Tymofyeyev 2012 give allocation-ratio-preserving variants).

    Parameters
    ----------
    seed : int
        The study's randomisation seed.
    sequence : int
        0-based position of this participant among all minimised participants.
    arms : sequence of ArmSpec
        Arms in protocol order.
    levels : mapping of str to str
        The new participant's level of each minimisation factor (may be empty).
    history : sequence of (mapping, str)
        ``(levels, arm)`` of each previous participant, in order, with a level for every
        factor in ``levels`` (extra keys are ignored).
    weights : mapping of str to float
        Weight of each factor (finite, >= 0); factors not listed weigh 1.0.
    probability : float
        Probability of assigning a minimising arm, in (0.5, 1]; 1.0 is deterministic
        minimisation (ties still broken at random).
    imbalance : {"range", "variance"}
        The imbalance measure :math:`D`.

    Returns
    -------
    MinimisationDecision
        The arm with its scores, minimising arms, draw and probabilities.

    Raises
    ------
    StudyError
        Empty or duplicate arms, ``sequence < 0``, ``probability`` outside (0.5, 1], a
        weight for a factor not in ``levels`` or < 0, or a history entry with an
        unknown arm or missing factor.

    Examples
    --------
    >>> arms = [ArmSpec("rehab", 1), ArmSpec("usual_care", 1)]
    >>> history = [({"site": "LEI"}, "rehab")]
    >>> d = minimisation_arm(seed=1, sequence=1, arms=arms, levels={"site": "LEI"}, history=history,
    ...                      weights={}, probability=1.0, imbalance="range")
    >>> d.arm, d.scores
    ('usual_care', {'rehab': 2.0, 'usual_care': 0.0})
    """
    specs = _check_arms(arms)
    seed = _check_int("seed", seed)
    sequence = _check_int("sequence", sequence, minimum=0)
    factor_weights = _check_minimisation_args(levels, weights, probability, imbalance)
    index = {a.id: k for k, a in enumerate(specs)}
    counts = _matching_counts(levels, history, index)

    scores: dict[str, float] = {}
    for a, candidate in enumerate(specs):
        terms = []
        for factor, w in factor_weights.items():
            x = [(c + (1 if k == a else 0)) / specs[k].ratio for k, c in enumerate(counts[factor])]
            terms.append(w * _imbalance(x, imbalance))
        scores[candidate.id] = math.fsum(terms)

    best = min(scores.values())
    tolerance = _TIE_TOLERANCE * max(1.0, abs(best))
    minimising = tuple(a.id for a in specs if scores[a.id] <= best + tolerance)
    probs = _allocation_probabilities(specs, minimising, float(probability))

    draw = _Stream("minimisation", seed, sequence).uniform()
    possible = [arm_id for arm_id, p in probs.items() if p > 0.0]
    chosen = possible[-1]  # guards against rounding in the cumulative sum
    cumulative = 0.0
    for arm_id in possible:
        cumulative += probs[arm_id]
        if draw < cumulative:
            chosen = arm_id
            break
    return MinimisationDecision(
        arm=chosen,
        scores=scores,
        minimising_arms=minimising,
        random_draw=draw,
        deterministic=len(possible) == 1,
        all_tied=len(minimising) == len(specs),
        probabilities=probs,
    )


def imbalance_summary(
    assignments: Sequence[tuple[Mapping[str, str], str]], arms: Sequence[ArmSpec]
) -> list[LevelBalance]:
    """Per factor level, the allocation counts per arm and the ratio-adjusted imbalance.

    Parameters
    ----------
    assignments : sequence of (mapping, str)
        ``(levels, arm)`` per allocated participant, counted under each factor it has.
    arms : sequence of ArmSpec
        Arms in protocol order.

    Returns
    -------
    list of LevelBalance
        One per (factor, level) seen, sorted; worst is ``max(b.imbalance for b in ...)``.

    Raises
    ------
    StudyError
        If ``arms`` is invalid or an assignment names an unknown arm.

    Examples
    --------
    >>> arms = [ArmSpec("a", 1), ArmSpec("b", 1)]
    >>> [(b.level, b.counts, b.imbalance) for b in imbalance_summary([({"sex": "f"}, "a")], arms)]
    [('f', {'a': 1, 'b': 0}, 1.0)]
    """
    specs = _check_arms(arms)
    ids = [a.id for a in specs]
    table: dict[tuple[str, str], dict[str, int]] = {}
    for i, (levels, arm) in enumerate(assignments):
        if arm not in ids:
            raise StudyError(f"assignments[{i}] has arm {arm!r}, which is not one of the arms {ids}.")
        for factor, level in levels.items():
            row = table.setdefault((factor, level), dict.fromkeys(ids, 0))
            row[arm] += 1
    result = []
    for (factor, level), counts in sorted(table.items()):
        scaled = [counts[a.id] / a.ratio for a in specs]
        result.append(LevelBalance(factor, level, counts, max(scaled) - min(scaled)))
    return result
