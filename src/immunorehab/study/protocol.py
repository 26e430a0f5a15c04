"""Trial protocols: a YAML file validated into frozen pydantic models.

A protocol declares the study, its sites and arms, how participants are stratified
and randomised, who is eligible and which visits collect which measures. Every model
forbids unknown keys, so a typo is an error rather than a silently ignored setting.

:func:`load_protocol` / :func:`parse_protocol` report *every* problem of a file in one
:class:`~immunorehab.errors.ProtocolError`; each problem's location is
``"<file>: <key path>"`` with key paths such as ``arms[2].ratio`` or
``visits[1].measures[0].type``. Field-level errors come from pydantic and are
translated here; cross-field checks (duplicate ids, unknown covariates, overlapping
levels, op/value mismatches, ...) live in :mod:`immunorehab.study._protocol_checks`,
run on the raw YAML data so that they are reported together with field errors.

Examples
--------
>>> from pathlib import Path
>>> protocol = load_protocol(Path("examples/protocols/phosp_r_immune.yaml"))  # doctest: +SKIP
>>> protocol.stratum_key({"age_years": 64, "who_severity": 5})  # doctest: +SKIP
'age_band=>=60|acute_severity=ward'
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from immunorehab.errors import NotFoundError, Problem, ProtocolError
from immunorehab.study import _analysis_checks as analysis_checks
from immunorehab.study import _protocol_checks as checks
from immunorehab.study._protocol_yaml import _UniqueKeyLoader as _UniqueKeyLoader  # rehab.programme uses it
from immunorehab.study._protocol_yaml import read_yaml as _read_yaml
from immunorehab.study.analysis_plan import AnalysisPlan

__all__ = [
    "AnalysisPlan",
    "Arm",
    "Criterion",
    "Design",
    "Level",
    "Measure",
    "MeasureType",
    "MinimisationSettings",
    "NoRandomisation",
    "Operator",
    "PermutedBlocksSettings",
    "Protocol",
    "Scalar",
    "Site",
    "StratificationFactor",
    "StudyInfo",
    "Visit",
    "load_protocol",
    "parse_protocol",
]

#: ``trial``: participants are randomised to arms; ``cohort``: followed without randomisation.
Design = Literal["trial", "cohort"]
Operator = Literal["==", "!=", "<", "<=", ">", ">=", "in", "not_in"]
MeasureType = Literal["number", "integer", "boolean", "text", "date", "choice"]
#: A criterion value. ``date`` comes first so that JSON round trips restore dates.
Scalar = date | str | int | float | bool
Slug = Annotated[str, Field(pattern=checks.SLUG_PATTERN)]


class _Model(BaseModel):
    """Base of all protocol models: immutable, strict, unknown keys rejected.

    ``strict=True`` keeps YAML honest: ``ratio: "2"`` or ``version: 1.0`` are errors
    (quote the version) instead of being coerced silently.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _raise_if(found: checks.Found) -> None:
    """Raise the pydantic error that :func:`parse_protocol` filters out (already reported)."""
    if found:
        details = "; ".join(f"{path}: {message}" if path else message for path, message in found)
        raise PydanticCustomError(checks.SEMANTIC_ERROR, "{details}", {"details": details})


class StudyInfo(_Model):
    """Identity of the study: slug id, title, trial registry number, protocol version."""

    id: Slug
    title: str
    registry: str | None = None
    version: str


class Site(_Model):
    """A recruiting site; ``code`` (three capitals, e.g. ``LEI``) prefixes participant ids."""

    code: Annotated[str, Field(pattern=checks.SITE_PATTERN)]
    name: str


class Arm(_Model):
    """A trial arm; ``ratio`` is its integer share of the allocation ratio."""

    id: Slug
    label: str
    ratio: Annotated[int, Field(ge=1)] = 1


class Level(_Model):
    """One level of a stratification factor.

    Either categorical (``values``: the covariate values belonging to the level) or
    numeric (inclusive ``min`` and/or ``max`` bounds), never both.
    """

    label: Annotated[str, Field(min_length=1)]
    values: list[str | int | bool] | None = None
    min: int | float | None = None
    max: int | float | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        _raise_if(checks.level_problems(self.model_dump(), None))
        return self

    def matches(self, value: object) -> bool:
        """Whether a covariate value falls into this level (``True`` never equals ``1``)."""
        if self.values is not None:
            return any(checks.same_kind(v, value) and v == value for v in self.values)
        if not checks.is_number(value):
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class StratificationFactor(_Model):
    """A stratification (or minimisation) factor derived from one participant covariate."""

    name: Slug
    field: str
    levels: list[Level] = Field(min_length=2)

    @model_validator(mode="after")
    def _check(self) -> Self:
        _raise_if(checks.factor_problems(self.model_dump()))
        return self

    def _match(self, value: object) -> str | None:
        return next((level.label for level in self.levels if level.matches(value)), None)

    def level_or_none(self, value: object) -> str | None:
        """The label of the level ``value`` falls into, or ``None`` (missing or no level)."""
        return self._match(value)

    def level_of(self, value: object) -> str:
        """Return the label of the level that ``value`` falls into.

        Parameters
        ----------
        value
            The participant's value of covariate ``self.field``.

        Returns
        -------
        str
            The matching level's label.

        Raises
        ------
        ProtocolError
            No level matches (one problem naming the factor and the value).
        """
        label = self._match(value)
        if label is None:
            problem = self._no_level(value)
            raise ProtocolError(f"no level of factor {self.name!r} matches {value!r}", [problem])
        return label

    def _no_level(self, value: object) -> Problem:
        labels = ", ".join(repr(level.label) for level in self.levels)
        got = "missing" if value is None else repr(value)
        return Problem(
            f"stratification factor {self.name}",
            f"{self.field} = {got} falls into no level (levels: {labels})",
        )


class PermutedBlocksSettings(_Model):
    """Permuted blocks; each block is ``multiple × sum of arm ratios`` long."""

    method: Literal["permuted_blocks"]
    block_multiples: list[Annotated[int, Field(ge=1)]] = Field(default=[1, 2], min_length=1)

    def block_sizes(self, arms: Sequence[Arm]) -> list[int]:
        """Block sizes for ``arms``: each multiple times the sum of the arm ratios."""
        total = sum(arm.ratio for arm in arms)
        return [multiple * total for multiple in self.block_multiples]


class MinimisationSettings(_Model):
    """Pocock–Simon minimisation with a random element.

    ``probability`` is the chance of assigning the arm that minimises imbalance;
    ``weights`` maps factor names to weights (missing factors weigh 1).
    """

    method: Literal["minimisation"]
    probability: Annotated[float, Field(gt=0.5, le=1.0)] = 0.8
    imbalance: Literal["range", "variance"] = "range"
    weights: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)

    def weight(self, factor: str) -> float:
        """The weight of ``factor`` (1 unless given)."""
        return self.weights.get(factor, 1.0)


class NoRandomisation(_Model):
    """No randomisation: the setting of a cohort study (``method: none``)."""

    method: Literal["none"]


class Criterion(_Model):
    """An eligibility criterion: ``<covariate field> <op> <value>``."""

    id: Slug
    description: str
    field: str
    op: Operator
    value: Scalar | list[Scalar]

    @model_validator(mode="after")
    def _check(self) -> Self:
        _raise_if(checks.criterion_problems(self.model_dump()))
        return self

    def is_met(self, value: object) -> bool:
        """Whether a participant's covariate value meets the criterion (``None`` fails)."""
        return checks.evaluate(self.op, value, self.value)


class Measure(_Model):
    """One value collected at a visit."""

    id: Slug
    label: str
    type: MeasureType
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    choices: list[str] = Field(default_factory=list)
    required: bool = True

    @model_validator(mode="after")
    def _check(self) -> Self:
        _raise_if(checks.measure_problems(self.model_dump()))
        return self


class Visit(_Model):
    """A scheduled visit; ``day`` is the target relative to randomisation (baseline 0)."""

    id: Slug
    label: str
    day: int
    window_before_days: Annotated[int, Field(ge=0)] = 0
    window_after_days: Annotated[int, Field(ge=0)] = 0
    measures: list[Measure] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Self:
        _raise_if(checks.visit_problems(self.model_dump()))
        return self

    def measure(self, measure_id: str) -> Measure:
        """The measure with id ``measure_id``; :class:`NotFoundError` if absent."""
        for measure in self.measures:
            if measure.id == measure_id:
                return measure
        known = ", ".join(m.id for m in self.measures) or "none"
        raise NotFoundError(f"visit {self.id!r} has no measure {measure_id!r} (measures: {known})")


Randomisation = Annotated[
    PermutedBlocksSettings | MinimisationSettings | NoRandomisation, Field(discriminator="method")
]


def _problems(raw: dict[str, Any]) -> checks.Found:
    """Every cross-field problem: structure, design (trial/cohort) and the analysis plan."""
    return (
        checks.protocol_problems(raw)
        + analysis_checks.design_problems(raw)
        + analysis_checks.analysis_problems(raw)
    )


class Protocol(_Model):
    """A validated study protocol. Build it with :func:`load_protocol`.

    ``design: trial`` (the default) randomises participants to ``arms`` (at least two) with
    a ``randomisation`` method; ``design: cohort`` follows participants without arms or
    randomisation (``randomisation`` omitted or ``method: none``). ``analysis`` is the
    prespecified analysis plan (optional).
    """

    study: StudyInfo
    design: Design = "trial"
    sites: list[Site] = Field(min_length=1)
    arms: list[Arm] = Field(default_factory=list)
    stratification: list[StratificationFactor] = Field(default_factory=list)
    randomisation: Randomisation = Field(default_factory=lambda: NoRandomisation(method="none"))
    eligibility: list[Criterion] = Field(default_factory=list)
    visits: list[Visit] = Field(min_length=1)
    analysis: AnalysisPlan | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        _raise_if(_problems(self.model_dump()))
        return self

    @property
    def randomised(self) -> bool:
        """Whether participants are randomised (a trial) or only followed (a cohort)."""
        return self.design == "trial"

    def baseline_visit(self) -> Visit:
        """The analysis plan's baseline visit, else the visit on day 0, else the first visit."""
        declared = self.analysis.baseline_visit if self.analysis is not None else None
        if declared is not None:
            return self.visit(declared)
        return next((v for v in self.visits if v.day == 0), self.visits[0])

    # -- lookups ---------------------------------------------------------------------
    def arm(self, arm_id: str) -> Arm:
        """The arm with id ``arm_id``; :class:`NotFoundError` if absent."""
        for arm in self.arms:
            if arm.id == arm_id:
                return arm
        known = ", ".join(a.id for a in self.arms)
        raise NotFoundError(f"protocol {self.study.id!r} has no arm {arm_id!r} (arms: {known})")

    def visit(self, visit_id: str) -> Visit:
        """The visit with id ``visit_id``; :class:`NotFoundError` if absent."""
        for visit in self.visits:
            if visit.id == visit_id:
                return visit
        known = ", ".join(v.id for v in self.visits)
        raise NotFoundError(f"protocol {self.study.id!r} has no visit {visit_id!r} (visits: {known})")

    # -- stratification --------------------------------------------------------------
    def stratum_of(self, covariates: Mapping[str, object]) -> dict[str, str]:
        """Map each stratification factor name to the participant's level label.

        Parameters
        ----------
        covariates
            Participant covariates keyed by field name (see ``fields.COVARIATES``).

        Returns
        -------
        dict[str, str]
            Factor name -> level label, in protocol order.

        Raises
        ------
        ProtocolError
            A value is missing or falls into no level (one problem per factor).
        """
        stratum: dict[str, str] = {}
        problems: list[Problem] = []
        for factor in self.stratification:
            value = covariates.get(factor.field)
            label = factor._match(value)
            if label is None:
                problems.append(factor._no_level(value))
            else:
                stratum[factor.name] = label
        if problems:
            raise ProtocolError("participant covariates fit no stratum of the protocol", problems)
        return stratum

    def stratum_key(self, covariates: Mapping[str, object]) -> str:
        """The stratum as text, e.g. ``"age_band=<60|severity=severe"`` (``""`` if unstratified)."""
        return "|".join(f"{name}={label}" for name, label in self.stratum_of(covariates).items())

    # -- eligibility -----------------------------------------------------------------
    def criterion_results(self, covariates: Mapping[str, object]) -> list[tuple[Criterion, bool]]:
        """Each eligibility criterion with whether ``covariates`` meet it (missing fails)."""
        return [(c, c.is_met(covariates.get(c.field))) for c in self.eligibility]

    def failed_criteria(self, covariates: Mapping[str, object]) -> list[Criterion]:
        """The eligibility criteria ``covariates`` do not meet (empty when eligible)."""
        return [c for c, met in self.criterion_results(covariates) if not met]

    # -- hashing ---------------------------------------------------------------------
    def canonical_json(self) -> str:
        """Compact JSON with sorted keys and defaults filled in: the text that is hashed.

        ``design: trial`` and an absent ``analysis`` are left out, so protocols written
        before those keys existed keep their hash.
        """
        data = self.model_dump(mode="json")
        if data.get("design") == "trial":
            del data["design"]
        if data.get("analysis") is None:
            del data["analysis"]
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def sha256(self) -> str:
        """Hex SHA-256 of :meth:`canonical_json` (independent of YAML layout and key order)."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()


# -- loading -----------------------------------------------------------------------------


def parse_protocol(text: str, source: str = "<protocol>") -> Protocol:
    """Parse and validate protocol YAML.

    Parameters
    ----------
    text
        The YAML document.
    source
        Name used in problem locations (usually the file path).

    Returns
    -------
    Protocol
        The validated protocol.

    Raises
    ------
    ProtocolError
        Invalid YAML (with line and column) or an invalid protocol; ``problems`` lists
        every problem found, each located as ``"<source>: <key path>"``.
    """
    raw = _read_yaml(text, source)
    if not isinstance(raw, dict):
        got = "an empty document" if raw is None else checks.show(raw)
        expected = ", ".join(Protocol.model_fields)
        problem = Problem(source, f"must be a YAML mapping with keys {expected}, got {got}")
        raise ProtocolError(f"{source} is not a protocol", [problem])
    found: dict[tuple[str, str], None] = {}
    semantic: checks.Found = []
    protocol: Protocol | None = None
    try:
        protocol = Protocol.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            if error["type"] == checks.SEMANTIC_ERROR:
                semantic.append((checks.format_loc(error["loc"]), error["msg"]))
            else:
                found[checks.translate(error, raw, Protocol)] = None
    found.update(dict.fromkeys(_problems(raw)))
    if protocol is None and not found:  # defensive: never swallow a failed validation
        found.update(dict.fromkeys(semantic))
    if found or protocol is None:
        problems = [Problem(f"{source}: {path}" if path else source, msg) for path, msg in found]
        noun = "problem" if len(problems) == 1 else "problems"
        raise ProtocolError(f"{source}: invalid protocol ({len(problems)} {noun})", problems)
    return protocol


def load_protocol(path: str | os.PathLike[str]) -> Protocol:
    """Read and validate a protocol YAML file.

    Parameters
    ----------
    path
        The protocol file (UTF-8 YAML).

    Returns
    -------
    Protocol
        The validated protocol.

    Raises
    ------
    ProtocolError
        The file is missing or unreadable, is not valid YAML, or is not a valid protocol.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        problem = Problem(str(file), "file does not exist; check the path")
        raise ProtocolError(f"protocol file {file} not found", [problem]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        problem = Problem(str(file), f"cannot be read as UTF-8 text: {exc}")
        raise ProtocolError(f"protocol file {file} cannot be read", [problem]) from exc
    return parse_protocol(text, str(file))
