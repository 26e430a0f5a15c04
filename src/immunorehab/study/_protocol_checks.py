"""Cross-field checks and error wording for :mod:`immunorehab.study.protocol`.

The checks work on plain data (the raw YAML mapping, or ``model_dump()`` of a model)
and return ``(key path, message)`` pairs. They skip anything of the wrong type, which
pydantic already reports, so a file gets each problem exactly once. ``translate``
turns a pydantic error into the same ``(key path, message)`` shape, with messages that
say what was found and what is expected.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, TypeGuard, Union, get_args, get_origin

import numpy as np
from pydantic import BaseModel
from pydantic_core import ErrorDetails

from immunorehab.study.fields import COVARIATES, Covariate

SLUG_PATTERN = r"^[a-z0-9_\-]+$"
SITE_PATTERN = r"^[A-Z]{3}$"
#: Error type of model validators; :func:`parse_protocol` already reports these.
SEMANTIC_ERROR = "protocol_semantics"
OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "not_in")
ORDER_OPS = ("<", "<=", ">", ">=")
MEASURE_TYPES = ("number", "integer", "boolean", "text", "date", "choice")
_PATTERN_HINTS = {
    SLUG_PATTERN: "a lowercase id of letters a-z, digits, '_' or '-'",
    SITE_PATTERN: "three capital letters (e.g. LEI)",
}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

Found = list[tuple[str, str]]
Loc = tuple[int | str, ...]


# -- values ------------------------------------------------------------------------------


def is_number(value: object) -> TypeGuard[float]:
    """A real number that is not a boolean (numpy scalars included)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _kind(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "bool"
    if is_number(value):
        return "number"
    if isinstance(value, datetime):
        return "datetime"
    return "date" if isinstance(value, date) else type(value).__name__


def same_kind(a: object, b: object) -> bool:
    """Whether two values are comparable: bool only with bool, numbers with numbers, ..."""
    return _kind(a) == _kind(b)


def is_missing(value: object) -> bool:
    """``None`` or a float NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def evaluate(op: str, value: object, target: object) -> bool:
    """``value <op> target``; missing values and values of another kind fail."""
    if is_missing(value):
        return False
    if op in ("in", "not_in"):
        options = target if isinstance(target, list) else [target]
        if not any(same_kind(value, option) for option in options):
            return False
        inside = any(same_kind(value, option) and value == option for option in options)
        return inside if op == "in" else not inside
    if isinstance(target, list) or not same_kind(value, target):
        return False
    return bool(_COMPARE[op](value, target))


def show(value: object) -> str:
    """A short YAML-flavoured rendering of a found value for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    text = value.isoformat() if isinstance(value, date) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def join(prefix: str, part: int | str) -> str:
    """Append a key (``.key``), an index (``[i]``) or a relative path to ``prefix``."""
    if isinstance(part, int):
        return f"{prefix}[{part}]"
    if not part:
        return prefix
    if part.startswith("[") or not prefix:
        return prefix + part
    return f"{prefix}.{part}"


def format_loc(loc: Loc) -> str:
    """A pydantic location as a key path."""
    path = ""
    for part in loc:
        path = join(path, part)
    return path


def _at(prefix: str, found: Found) -> Found:
    return [(join(prefix, path), message) for path, message in found]


def _dicts(raw: object) -> list[tuple[int, dict[str, Any]]]:
    if not isinstance(raw, list):
        return []
    return [(i, entry) for i, entry in enumerate(raw) if isinstance(entry, dict)]


def _duplicates(entries: list[tuple[int, dict[str, Any]]], key: str, what: str) -> Found:
    first: dict[str, int] = {}
    found: Found = []
    for i, entry in entries:
        value = entry.get(key)
        if not isinstance(value, str):
            continue
        if value in first:
            found.append((f"[{i}].{key}", f"duplicate {what} {value!r} (already used at [{first[value]}])"))
        else:
            first[value] = i
    return found


def _covariate(raw: dict[str, Any], found: Found) -> Covariate | None:
    field = raw.get("field")
    if not isinstance(field, str):
        return None
    if field not in COVARIATES:
        known = ", ".join(COVARIATES)
        found.append(("field", f"unknown covariate field {field!r} (known: {known})"))
    return COVARIATES.get(field)


def _value_problem(value: object, cov: Covariate) -> str | None:
    """Why ``value`` cannot be a value of covariate ``cov`` (None if it can)."""
    what = f"for {cov.type} field {cov.name!r}"
    if cov.type == "integer":
        if not is_number(value):
            return f"must be a number {what}, got {show(value)}"
        low = -math.inf if cov.minimum is None else cov.minimum
        high = math.inf if cov.maximum is None else cov.maximum
        if not low <= value <= high:
            return f"must be within {cov.minimum}..{cov.maximum} {what}, got {show(value)}"
    elif cov.type == "boolean" and not isinstance(value, bool):
        return f"must be true or false {what}, got {show(value)}"
    elif cov.type == "choice" and value not in cov.choices:
        return f"must be one of {', '.join(cov.choices)} {what}, got {show(value)}"
    elif cov.type == "text" and not isinstance(value, str):
        return f"must be a string {what}, got {show(value)}"
    elif cov.type == "date" and (not isinstance(value, date) or isinstance(value, datetime)):
        return f"must be a date (YYYY-MM-DD, unquoted) {what}, got {show(value)}"
    return None


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | date)


# -- model-level checks ------------------------------------------------------------------


def _bounds(raw: dict[str, Any]) -> tuple[float, float] | None:
    low, high = raw.get("min"), raw.get("max")
    if (low is not None and not is_number(low)) or (high is not None and not is_number(high)):
        return None
    return (-math.inf if low is None else low, math.inf if high is None else high)


def level_problems(level: dict[str, Any], cov: Covariate | None) -> Found:
    """A level must be categorical or numeric, consistent, and fit the covariate."""
    values = level.get("values")
    numeric = level.get("min") is not None or level.get("max") is not None
    if values is not None and numeric:
        return [("", "give either 'values' or 'min'/'max', not both")]
    if values is None and not numeric:
        return [("", "needs 'values' (categorical level) or 'min'/'max' (numeric level)")]
    found: Found = []
    label = level.get("label")
    if isinstance(label, str) and "|" in label:
        found.append(("label", f"must not contain '|' (it separates factors in stratum keys), got {label!r}"))
    if isinstance(values, list):
        if not values:
            found.append(("values", "must list at least one value"))
        if cov is not None:
            for k, value in enumerate(values):
                problem = _value_problem(value, cov) if _is_scalar(value) else None
                if problem:
                    found.append((f"values[{k}]", problem))
    bounds = _bounds(level)
    if numeric and bounds is not None and bounds[0] > bounds[1]:
        found.append(("min", f"must be <= max ({show(level.get('max'))}), got {show(level.get('min'))}"))
    if numeric and cov is not None and cov.type != "integer":
        found.append(("", f"min/max need an integer field but {cov.name!r} is {cov.type}; use 'values'"))
    return found


def _overlaps(levels: list[tuple[int, dict[str, Any]]]) -> Found:
    found: Found = []
    for a, (i, first) in enumerate(levels):
        for j, second in levels[a + 1 :]:
            one, two = _bounds(first), _bounds(second)
            if first.get("values") is not None or second.get("values") is not None:
                shared = [
                    v
                    for v in second.get("values") or []
                    if any(same_kind(v, w) and v == w for w in first.get("values") or [])
                ]
                if shared:
                    msg = f"{show(shared[0])} is also in level {first.get('label')!r} (levels[{i}])"
                    found.append((f"[{j}].values", msg))
            elif one and two and one[0] <= one[1] and max(one[0], two[0]) <= min(one[1], two[1]):
                msg = f"overlaps level {first.get('label')!r} (levels[{i}]); bounds are inclusive"
                found.append((f"[{j}]", msg))
    return found


def _level_kind(level: dict[str, Any]) -> str | None:
    """``"values"`` or ``"bounds"``; None when a level has both or neither (reported itself)."""
    values = level.get("values") is not None
    bounds = level.get("min") is not None or level.get("max") is not None
    return None if values == bounds else ("values" if values else "bounds")


def factor_problems(factor: dict[str, Any]) -> Found:
    """Known covariate, unique level labels, one kind of level, no overlaps."""
    found: Found = []
    cov = _covariate(factor, found)
    levels = _dicts(factor.get("levels"))
    found += _at("levels", _duplicates(levels, "label", "level label"))
    for i, level in levels:
        found += _at(f"levels[{i}]", level_problems(level, cov))
    kinds = {_level_kind(level) for _, level in levels} - {None}
    if len(kinds) > 1:
        mixed = "mixes categorical ('values') and numeric ('min'/'max') levels; use one kind"
        found.append(("levels", mixed))
    else:
        found += _at("levels", _overlaps(levels))
    return found


def criterion_problems(crit: dict[str, Any]) -> Found:
    """Known covariate; op defined for its type; value(s) of the covariate's type."""
    found: Found = []
    cov = _covariate(crit, found)
    op, value = crit.get("op"), crit.get("value")
    if cov is None or op not in OPS:
        return found
    if op in ORDER_OPS and cov.type not in ("integer", "date"):
        msg = f"{op!r} needs an integer or date field, {cov.name!r} is {cov.type}; use ==, !=, in or not_in"
        found.append(("op", msg))
    if op in ("in", "not_in"):
        if not isinstance(value, list):
            if _is_scalar(value):
                found.append(("value", f"op {op!r} needs a list of values, got {show(value)}"))
            return found
        if not value:
            found.append(("value", f"op {op!r} needs at least one value, got an empty list"))
        items = [(f"value[{k}]", v) for k, v in enumerate(value)]
    elif isinstance(value, list):
        found.append(("value", f"op {op!r} needs a single value, got a list; use 'in' for several"))
        return found
    else:
        items = [("value", value)]
    for path, item in items:
        problem = _value_problem(item, cov) if _is_scalar(item) else None
        if problem:
            found.append((path, problem))
    return found


def measure_problems(measure: dict[str, Any]) -> Found:
    """min/max only for numeric measures (min <= max); choices exactly for choice measures."""
    kind, choices = measure.get("type"), measure.get("choices")
    if kind not in MEASURE_TYPES:
        return []
    found: Found = []
    if kind in ("number", "integer"):
        bounds = _bounds(measure)
        if bounds is not None and bounds[0] > bounds[1]:
            found.append(("min", f"must be <= max ({show(measure['max'])}), got {show(measure['min'])}"))
        for key in ("min", "max"):
            bound = measure.get(key)
            if kind == "integer" and is_number(bound) and not float(bound).is_integer():
                found.append((key, f"must be a whole number for an integer measure, got {show(bound)}"))
    else:
        for key in ("min", "max"):
            if measure.get(key) is not None:
                found.append((key, f"only allowed for number and integer measures, not {kind!r}"))
    if kind == "choice" and not choices and (choices is None or isinstance(choices, list)):
        found.append(("choices", "required for a choice measure: list the allowed answers"))
    elif kind == "choice" and isinstance(choices, list):
        seen = [c for k, c in enumerate(choices) if c in choices[:k]]
        if seen:
            found.append(("choices", f"duplicate choice {show(seen[0])}"))
    elif isinstance(choices, list) and choices:
        found.append(("choices", f"only allowed for choice measures, not {kind!r}"))
    return found


def visit_problems(visit: dict[str, Any]) -> Found:
    """Unique measure ids within the visit, then each measure."""
    measures = _dicts(visit.get("measures"))
    found = _at("measures", _duplicates(measures, "id", "measure id"))
    for i, measure in measures:
        found += _at(f"measures[{i}]", measure_problems(measure))
    return found


def _randomisation_problems(rand: object, strat: object) -> Found:
    if not isinstance(rand, dict) or rand.get("method") != "minimisation":
        return []
    if strat is not None and not isinstance(strat, list):
        return []
    names = [f.get("name") for _, f in _dicts(strat)]
    found: Found = []
    if not strat:
        found.append(("randomisation.method", "minimisation needs at least one stratification factor"))
    weights = rand.get("weights")
    if isinstance(weights, dict):
        for name in weights:
            if name not in names:
                known = ", ".join(str(n) for n in names) or "none"
                msg = f"unknown stratification factor (factors: {known})"
                found.append((f"randomisation.weights.{name}", msg))
    return found


def _day_problems(visits: list[tuple[int, dict[str, Any]]]) -> Found:
    found: Found = []
    previous: tuple[int, int] | None = None
    for i, visit in visits:
        day = visit.get("day")
        if not isinstance(day, int) or isinstance(day, bool):
            continue
        if previous is not None and day <= previous[1]:
            msg = f"must be after the previous visit's day {previous[1]} (visits[{previous[0]}]), got {day}"
            found.append((f"visits[{i}].day", msg + "; list visits in order of increasing day"))
        previous = (i, day)
    return found


def protocol_problems(raw: dict[str, Any]) -> Found:
    """Every cross-field problem of a whole protocol (raw YAML data or a model dump)."""
    found = _at("sites", _duplicates(_dicts(raw.get("sites")), "code", "site code"))
    found += _at("arms", _duplicates(_dicts(raw.get("arms")), "id", "arm id"))
    factors = _dicts(raw.get("stratification"))
    found += _at("stratification", _duplicates(factors, "name", "factor name"))
    for i, factor in factors:
        found += _at(f"stratification[{i}]", factor_problems(factor))
    found += _randomisation_problems(raw.get("randomisation"), raw.get("stratification"))
    criteria = _dicts(raw.get("eligibility"))
    found += _at("eligibility", _duplicates(criteria, "id", "criterion id"))
    for i, crit in criteria:
        found += _at(f"eligibility[{i}]", criterion_problems(crit))
    visits = _dicts(raw.get("visits"))
    found += _at("visits", _duplicates(visits, "id", "visit id"))
    for i, visit in visits:
        found += _at(f"visits[{i}]", visit_problems(visit))
    return found + _day_problems(visits)


# -- pydantic error wording --------------------------------------------------------------


def _unwrap(tp: object) -> tuple[object, tuple[object, ...]]:
    """Strip ``Annotated`` and return the bare type plus its constraint objects."""
    constraints: tuple[object, ...] = ()
    while get_origin(tp) is Annotated:
        tp, *meta = get_args(tp)
        for item in meta:
            constraints += tuple(getattr(item, "metadata", [item]))
    return tp, constraints


def _is_model(tp: object) -> TypeGuard[type[BaseModel]]:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


#: Keys that discriminate the members of a union of models (``randomisation.method``,
#: ``analysis.outcomes[i].source.type``).
_DISCRIMINATORS = ("method", "type")


def _tag_key(tp: object) -> str:
    """The discriminator key of a union of models (``method`` unless its members use ``type``)."""
    for key in _DISCRIMINATORS:
        if all(_is_model(m) and key in m.model_fields for m in get_args(tp)):
            return key
    return "method"


def _tagged(tp: object, tag: object) -> object | None:
    """The member of a discriminated union whose discriminator literal is ``tag``."""
    members: tuple[object, ...] = get_args(tp)
    key = _tag_key(tp)
    for member in members:
        field = member.model_fields.get(key) if _is_model(member) else None
        if field is not None and tag in get_args(field.annotation):
            return member
    return None


@dataclass(frozen=True, slots=True)
class _Slot:
    """Where a pydantic location points: display path, expected type, raw value found."""

    path: str
    tp: object
    constraints: tuple[object, ...]
    parent: object  # the model owning the last key (for unknown keys)
    node: object  # the raw value at ``path``


def _optional_member(tp: object) -> object:
    """``X`` for ``X | None`` (pydantic puts no member tag in such locations)."""
    if get_origin(tp) in (Union, UnionType):
        members = [arg for arg in get_args(tp) if arg is not NoneType]
        if len(members) == 1:
            return _unwrap(members[0])[0]
    return tp


def _child(node: object, part: int | str) -> object:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def _resolve(loc: Loc, raw: object, root: type[BaseModel]) -> _Slot:
    """Follow ``loc`` through the model types and the raw data at the same time."""
    tp: object = root
    constraints: tuple[object, ...] = ()
    path, node, parent = "", raw, None
    for part in loc:
        tp, more = _unwrap(tp)
        constraints += more
        if get_origin(tp) in (Union, UnionType):
            member = _tagged(tp, part)
            if member is not None:  # a discriminator tag: no key in the file
                tp = member
                continue
            if _optional_member(tp) is tp:  # member tags of a plain union: stop here
                return _Slot(path, tp, constraints, parent, node)
            tp = _optional_member(tp)
        origin = get_origin(tp)
        if _is_model(tp):
            parent = tp
            info = tp.model_fields.get(part) if isinstance(part, str) else None
            tp, constraints = (info.annotation, tuple(info.metadata)) if info else (None, ())
        elif origin in (list, dict):
            tp, constraints = get_args(tp)[-1], ()
        else:
            tp, constraints = None, ()
        path, node = join(path, part), _child(node, part)
    tp, more = _unwrap(tp)
    return _Slot(path, tp, constraints + more, parent, node)


def _tags(tp: object) -> str:
    key = _tag_key(tp)
    tags = [get_args(m.model_fields[key].annotation) for m in get_args(tp) if _is_model(m)]
    return ", ".join(repr(tag) for group in tags for tag in group)


def describe(tp: object) -> str:
    """What a type expects, in words."""
    names = {NoneType: "null", bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if isinstance(tp, type) and tp in names:
        return names[tp]
    if tp is date:
        return "a date (YYYY-MM-DD)"
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(arg) for arg in get_args(tp))
    if origin in (Union, UnionType) and all(_is_model(arg) for arg in get_args(tp)):
        return f"a mapping whose {_tag_key(tp)} is one of {_tags(tp)}"
    if origin in (Union, UnionType):
        parts = [describe(_unwrap(arg)[0]) for arg in get_args(tp)]
        return ", ".join(parts[:-1]) + " or " + parts[-1]
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    if _is_model(tp):
        return "a mapping with keys " + ", ".join(tp.model_fields)
    return "a valid value"


def _bounds_text(constraints: Sequence[object]) -> str:
    symbols = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
    parts = [
        f"{sym} {show(getattr(c, attr))}" for c in constraints for attr, sym in symbols if hasattr(c, attr)
    ]
    return " and ".join(parts)


def translate(error: ErrorDetails, raw: object, root: type[BaseModel]) -> tuple[str, str]:
    """A pydantic error as ``(key path, message)`` saying what was found and expected."""
    kind, ctx, got = error["type"], error.get("ctx", {}), error.get("input")
    slot = _resolve(error["loc"], raw, root)
    path, tp, expected = slot.path, slot.tp, describe(slot.tp)
    if kind == "union_tag_invalid":
        key = _tag_key(tp)
        return join(path, key), f"unknown {key} {ctx.get('tag')!r} (allowed: {_tags(tp)})"
    if kind == "union_tag_not_found":
        return join(path, _tag_key(tp)), f"required key is missing (one of {_tags(tp)})"
    if kind == "missing":
        return path, f"required key is missing (expected {expected})"
    if get_origin(tp) in (Union, UnionType):
        return path, f"must be {expected}, got {show(slot.node)}"
    if kind == "extra_forbidden":
        allowed = ", ".join(slot.parent.model_fields) if _is_model(slot.parent) else "none"
        return path, f"unknown key {error['loc'][-1]!r} (allowed: {allowed})"
    if kind == "too_short":
        return path, f"must list at least {ctx.get('min_length')} entries, got {ctx.get('actual_length')}"
    if kind == "string_pattern_mismatch":
        hint = _PATTERN_HINTS.get(str(ctx.get("pattern")), f"a string matching {ctx.get('pattern')}")
        return path, f"must be {hint}, got {show(got)}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return path, f"must be {expected} {_bounds_text(slot.constraints)}, got {show(got)}"
    if kind == "string_too_short":
        return path, f"must not be empty, got {show(got)}"
    message = f"must be {expected}, got {show(got)}"
    if tp is str and isinstance(got, int | float | date):
        message += " (put it in quotes)"
    return path, message
