"""Cross-field checks of a protocol's ``analysis:`` section (see :mod:`.analysis_plan`).

Like :mod:`._protocol_checks`, the checks work on plain data (raw YAML or a model dump),
skip values of the wrong type (pydantic reports those) and return ``(key path, message)``
pairs relative to the protocol root, so each problem is reported exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from immunorehab.study._protocol_checks import MEASURE_TYPES, Found, _at, _dicts, _duplicates, join, show
from immunorehab.study.fields import COVARIATES

__all__ = ["analysis_problems", "design_problems"]

_NUMERIC = ("number", "integer")
_ARM_MODELS = ("ancova", "mmrm", "mixed")
#: Participant fields usable as covariates (dates are not).
_COVARIATE_FIELDS = tuple(name for name, c in COVARIATES.items() if c.type != "date")


@dataclass(frozen=True, slots=True)
class _Context:
    """What the analysis section may refer to, read from the rest of the protocol."""

    design: str
    arms: tuple[str, ...]
    factors: tuple[str, ...]
    visits: dict[str, tuple[int | None, dict[str, str]]]  # id -> (day, measure id -> type)
    baseline: str | None
    #: Whether arms / visits / factors are valid themselves. A problem there is reported once,
    #: where it is, not again as every analysis reference to it.
    arms_ok: bool
    visits_ok: bool
    factors_ok: bool

    def order(self, visit: str) -> int:
        return list(self.visits).index(visit)


def _context(raw: dict[str, Any], plan: dict[str, Any]) -> _Context:
    visits: dict[str, tuple[int | None, dict[str, str]]] = {}
    for _, visit in _dicts(raw.get("visits")):
        vid, day = visit.get("id"), visit.get("day")
        if isinstance(vid, str) and vid not in visits:
            measures = {
                str(m.get("id")): str(m.get("type")) for _, m in _dicts(visit.get("measures")) if "id" in m
            }
            visits[vid] = (day if isinstance(day, int) and not isinstance(day, bool) else None, measures)
    baseline = plan.get("baseline_visit")
    if not isinstance(baseline, str):
        baseline = next((v for v, (day, _) in visits.items() if day == 0), next(iter(visits), None))
    design = raw.get("design", "trial")
    arms = raw.get("arms")
    return _Context(
        design=design if isinstance(design, str) else "trial",
        arms=tuple(str(a.get("id")) for _, a in _dicts(arms)),
        factors=tuple(str(f.get("name")) for _, f in _dicts(raw.get("stratification"))),
        visits=visits,
        baseline=baseline,
        arms_ok=_clean(arms, "id") and (design == "cohort" or len(_list(arms)) >= 2),
        visits_ok=_clean(raw.get("visits"), "id")
        and all(_measures_ok(v) for _, v in _dicts(raw.get("visits"))),
        factors_ok=raw.get("stratification") is None or _clean(raw.get("stratification"), "name"),
    )


def _clean(entries: object, key: str) -> bool:
    """A list of mappings with unique string ``key`` values."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return False
    ids = [e.get(key) for e in entries]
    return all(isinstance(i, str) for i in ids) and len(set(ids)) == len(ids)


def _measures_ok(visit: dict[str, Any]) -> bool:
    measures = visit.get("measures", [])
    return _clean(measures, "id") and all(m.get("type") in MEASURE_TYPES for m in measures)


# -- design ------------------------------------------------------------------------------


def design_problems(raw: dict[str, Any]) -> Found:
    """A trial has >= 2 arms and a randomisation method; a cohort has neither."""
    design = raw.get("design", "trial")
    arms, rand = raw.get("arms"), raw.get("randomisation")
    method = rand.get("method") if isinstance(rand, dict) else None
    if design == "trial":
        found: Found = []
        if arms is None or (isinstance(arms, list) and len(arms) < 2):
            got = 0 if arms is None else len(arms)
            found.append(("arms", f"must list at least 2 arms for a trial, got {got}"))
        if rand is None:
            msg = "required key is missing: a trial needs method 'permuted_blocks' or 'minimisation'"
            found.append(("randomisation", msg))
        elif method == "none":
            msg = "'none' is for cohort designs; a trial needs 'permuted_blocks' or 'minimisation'"
            found.append(("randomisation.method", msg))
        return found
    if design != "cohort":
        return []
    found = []
    if isinstance(arms, list) and arms:
        msg = "a cohort study has no arms (nobody is randomised); remove 'arms' and use analysis.group"
        found.append(("arms", msg))
    if isinstance(method, str) and method != "none":
        msg = f"a cohort study is not randomised: use method 'none' or leave it out, got {method!r}"
        found.append(("randomisation.method", msg))
    return found


# -- helpers -----------------------------------------------------------------------------


def _visit_ref(ctx: _Context, path: str, visit: object) -> Found:
    if ctx.visits_ok and isinstance(visit, str) and visit not in ctx.visits:
        return [(path, f"unknown visit {visit!r} (visits: {', '.join(ctx.visits)})")]
    return []


def _measure_at(ctx: _Context, path: str, measure: str, visit: str, kinds: tuple[str, ...]) -> Found:
    if not ctx.visits_ok or visit not in ctx.visits:
        return []
    measures = ctx.visits[visit][1]
    if measure not in measures:
        known = ", ".join(measures) or "none"
        return [(path, f"visit {visit!r} has no measure {measure!r} (measures: {known})")]
    if measures[measure] not in kinds:
        want = " or ".join(kinds)
        return [(path, f"measure {measure!r} is {measures[measure]} at visit {visit!r}; expected {want}")]
    return []


def _covariate_refs(ctx: _Context, path: str, names: object, extra: tuple[str, ...] = ()) -> Found:
    if not isinstance(names, list) or not ctx.factors_ok:
        return []
    known = (*ctx.factors, *_COVARIATE_FIELDS, *extra)
    found: Found = []
    for k, name in enumerate(names):
        if isinstance(name, str) and name not in known:
            msg = (
                f"unknown covariate {name!r} (stratification factors: {', '.join(ctx.factors) or 'none'}; "
                f"participant fields: {', '.join(_COVARIATE_FIELDS)})"
            )
            found.append((f"{path}[{k}]", msg))
        elif isinstance(name, str) and name in names[:k]:
            found.append((f"{path}[{k}]", f"duplicate covariate {name!r}"))
    return found


def _arm_ref(ctx: _Context, path: str, arm: object) -> Found:
    if ctx.arms_ok and isinstance(arm, str) and arm not in ctx.arms:
        return [(path, f"unknown arm {arm!r} (arms: {', '.join(ctx.arms) or 'none'})")]
    return []


def _follow_up_visits(ctx: _Context, path: str, visits: object, baseline: str | None) -> Found:
    found: Found = []
    if not isinstance(visits, list):
        return found
    for k, visit in enumerate(visits):
        where = f"{path}[{k}]"
        if not isinstance(visit, str):
            continue
        problems = _visit_ref(ctx, where, visit)
        if problems:
            found += problems
        elif visit == baseline:
            found.append((where, f"{visit!r} is the baseline visit; list the follow-up visits"))
        elif visit in visits[:k]:
            found.append((where, f"duplicate visit {visit!r}"))
        elif baseline in ctx.visits and visit in ctx.visits and ctx.order(visit) < ctx.order(baseline):
            found.append((where, f"visit {visit!r} comes before the baseline visit {baseline!r}"))
    return found


def _source_problems(
    ctx: _Context, path: str, source: object, visits: list[str], baseline: str | None
) -> Found:
    if not isinstance(source, dict) or source.get("type") != "visit":
        return []
    measure = source.get("measure")
    if not isinstance(measure, str):
        return []
    found: Found = []
    for visit in dict.fromkeys([v for v in (baseline, *visits) if isinstance(v, str)]):
        found += _measure_at(ctx, join(path, "measure"), measure, visit, _NUMERIC)
    return found[:1] if found else []


# -- outcomes ----------------------------------------------------------------------------


def _model_visits(model: object, visits: list[Any], primary: object) -> Found:
    found: Found = []
    if model == "ancova" and len(visits) != 1:
        found.append(("visits", f"an ancova outcome has exactly one follow-up visit, got {len(visits)}"))
    elif model in ("mmrm", "mixed") and not visits:
        found.append(("visits", f"a {model} outcome needs at least one follow-up visit"))
    if primary is not None and model != "mmrm":
        found.append(("primary_visit", f"only for mmrm outcomes (this one is {show(model)})"))
    elif isinstance(primary, str) and primary not in visits:
        found.append(("primary_visit", f"{primary!r} is not one of the outcome's visits {visits}"))
    return found


def _outcome_kind_problems(ctx: _Context, outcome: dict[str, Any], plan: dict[str, Any]) -> Found:
    found: Found = []
    model, source = outcome.get("model", "ancova"), outcome.get("source")
    population = outcome.get("population", "itt")
    rehab = isinstance(source, dict) and source.get("type") == "rehab"
    if rehab and ctx.design == "cohort":
        found.append(("source.type", "rehab adherence exists only in trials with a programme"))
    if rehab and model != "descriptive":
        found.append(("model", f"rehab adherence outcomes are descriptive (per arm), got {show(model)}"))
    if rehab and outcome.get("visits"):
        found.append(("visits", "rehab adherence is per participant: leave 'visits' out"))
    if ctx.design == "cohort" and model in ("ancova", "mmrm"):
        found.append(("model", f"a cohort has no arms to compare: use mixed or descriptive, got {model!r}"))
    if ctx.design == "cohort" and population != "itt":
        found.append(("population", "a cohort has one population (everyone enrolled); leave it out"))
    elif population in ("per_protocol", "both") and plan.get("per_protocol") is None:
        found.append(("population", f"{population!r} needs analysis.per_protocol (the completer definition)"))
    if model != "descriptive" and outcome.get("family") is None:
        found.append(("family", "required for an outcome with a model (its p-values are adjusted in it)"))
    return found


def _outcome_problems(ctx: _Context, outcome: dict[str, Any], plan: dict[str, Any]) -> Found:
    found = _visit_ref(ctx, "baseline_visit", outcome.get("baseline_visit"))
    baseline = _own_baseline(ctx, outcome)
    visits = _list(outcome.get("visits"))
    found += _follow_up_visits(ctx, "visits", visits, baseline)
    model = outcome.get("model", "ancova")
    found += _model_visits(model, visits, outcome.get("primary_visit"))
    known = [v for v in visits if isinstance(v, str) and v in ctx.visits]
    found += _source_problems(ctx, "source", outcome.get("source"), known, baseline)
    found += _outcome_kind_problems(ctx, outcome, plan)
    found += _covariate_refs(ctx, "covariates", outcome.get("covariates"))
    families = [f.get("id") for _, f in _dicts(plan.get("families"))]
    family = outcome.get("family")
    if isinstance(family, str) and family not in families:
        names = ", ".join(map(str, families)) or "none"
        found.append(("family", f"unknown family {family!r} (families: {names})"))
    return found


def _families_used(plan: dict[str, Any]) -> Found:
    used = {o.get("family") for _, o in _dicts(plan.get("outcomes"))}
    return [
        (f"families[{i}].id", f"family {f.get('id')!r} has no outcomes; remove it or assign outcomes to it")
        for i, f in _dicts(plan.get("families"))
        if isinstance(f.get("id"), str) and f.get("id") not in used
    ]


# -- arms, groups, cohort analyses -------------------------------------------------------


def _arm_problems(ctx: _Context, plan: dict[str, Any]) -> Found:
    if ctx.design == "cohort":
        keys = ("reference_arm", "contrasts", "per_protocol", "imputation")
        return [(k, "a cohort has no arms: leave it out") for k in keys if plan.get(k) not in (None, [])]
    found: Found = []
    reference = plan.get("reference_arm")
    compared = any(o.get("model", "ancova") in _ARM_MODELS for _, o in _dicts(plan.get("outcomes")))
    if reference is None and compared:
        found.append(("reference_arm", f"required to compare arms (arms: {', '.join(ctx.arms)})"))
    found += _arm_ref(ctx, "reference_arm", reference)
    contrasts = _dicts(plan.get("contrasts"))
    found += _at("contrasts", _duplicates(contrasts, "arm", "contrast arm"))
    for i, contrast in contrasts:
        arm = contrast.get("arm")
        found += _arm_ref(ctx, f"contrasts[{i}].arm", arm)
        if arm == reference and isinstance(arm, str):
            msg = f"{arm!r} is the reference arm; contrast another arm with it"
            found.append((f"contrasts[{i}].arm", msg))
    pp = plan.get("per_protocol")
    if isinstance(pp, dict) and isinstance(pp.get("programme_arms"), list):
        for k, arm in enumerate(pp["programme_arms"]):
            found += _arm_ref(ctx, f"per_protocol.programme_arms[{k}]", arm)
    if plan.get("group") is not None:
        found.append(("group", "only for cohort designs (a trial's groups are its arms)"))
    return found


def _group_problems(ctx: _Context, group: object) -> Found:
    if not isinstance(group, dict):
        return []
    found = _visit_ref(ctx, "group.visit", group.get("visit"))
    measure, visit = group.get("measure"), group.get("visit")
    if isinstance(measure, str) and isinstance(visit, str) and not found:
        found += _measure_at(ctx, "group.measure", measure, visit, ("boolean", "choice"))
    true, false = group.get("true_label", "yes"), group.get("false_label", "no")
    if true == false:
        found.append(("group.false_label", "must differ from true_label"))
    reference = group.get("reference")
    known = isinstance(visit, str) and isinstance(measure, str)
    kind = ctx.visits.get(str(visit), (None, {}))[1].get(str(measure)) if known else None
    if isinstance(reference, str) and kind == "boolean" and reference not in (true, false):
        msg = f"must be one of the group labels {true!r} or {false!r}, got {reference!r}"
        found.append(("group.reference", msg))
    return found


def _normalisation_problems(ctx: _Context, item: dict[str, Any]) -> Found:
    found = _visit_ref(ctx, "baseline_visit", item.get("baseline_visit"))
    baseline = _own_baseline(ctx, item)
    visits = _list(item.get("visits"))
    found += _follow_up_visits(ctx, "visits", visits, baseline)
    known = [v for v in visits if isinstance(v, str) and v in ctx.visits]
    found += _source_problems(ctx, "source", item.get("source"), known, baseline)
    return found + _covariate_refs(ctx, "covariates", item.get("covariates"))


def _prevalence_problems(ctx: _Context, item: dict[str, Any], plan: dict[str, Any]) -> Found:
    found: Found = []
    visits = _list(item.get("visits"))
    measure = item.get("measure")
    for k, visit in enumerate(visits):
        problems = _visit_ref(ctx, f"visits[{k}]", visit)
        found += problems
        if not problems and isinstance(visit, str) and isinstance(measure, str):
            found += _measure_at(ctx, "measure", measure, visit, ("boolean",))
    group = plan.get("group")
    extra: tuple[str, ...] = ("arm",) if ctx.design == "trial" else ()
    if isinstance(group, dict) and isinstance(group.get("id"), str):
        extra += (group["id"],)
    by = item.get("by")
    if by is not None:
        found += [("by", m) for _, m in _covariate_refs(ctx, "by", [by], extra)]
    return _dedupe(found)


def _own_baseline(ctx: _Context, item: dict[str, Any]) -> str | None:
    own = item.get("baseline_visit")
    return own if isinstance(own, str) else ctx.baseline


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _dedupe(found: Found) -> Found:
    return list(dict.fromkeys(found))


def _ids(plan: dict[str, Any]) -> Found:
    """Outcome, normalisation and prevalence ids share the results' ``outcome`` column."""
    seen: dict[str, str] = {}
    found: Found = []
    for section in ("outcomes", "normalisation", "prevalence"):
        for i, item in _dicts(plan.get(section)):
            ident = item.get("id")
            if not isinstance(ident, str):
                continue
            where = f"{section}[{i}]"
            if ident in seen:
                found.append((f"{where}.id", f"duplicate id {ident!r} (already used at {seen[ident]})"))
            else:
                seen[ident] = where
    return found


def analysis_problems(raw: dict[str, Any]) -> Found:
    """Every cross-field problem of ``raw['analysis']`` (paths from the protocol root)."""
    plan = raw.get("analysis")
    if not isinstance(plan, dict):
        return []
    ctx = _context(raw, plan)
    found = _visit_ref(ctx, "baseline_visit", plan.get("baseline_visit"))
    found += _arm_problems(ctx, plan)
    found += _covariate_refs(ctx, "covariates", plan.get("covariates"))
    found += _group_problems(ctx, plan.get("group"))
    found += _at("families", _duplicates(_dicts(plan.get("families")), "id", "family id"))
    found += _ids(plan)
    for i, outcome in _dicts(plan.get("outcomes")):
        found += _at(f"outcomes[{i}]", _outcome_problems(ctx, outcome, plan))
    found += _families_used(plan)
    for i, item in _dicts(plan.get("normalisation")):
        found += _at(f"normalisation[{i}]", _normalisation_problems(ctx, item))
    for i, item in _dicts(plan.get("prevalence")):
        found += _at(f"prevalence[{i}]", _prevalence_problems(ctx, item, plan))
    return _at("analysis", _dedupe(found))
