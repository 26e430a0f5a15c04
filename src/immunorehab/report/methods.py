"""The methods section, written from the protocol and the analysis' own record of what it did.

Every sentence is generated from a declared setting (protocol design, randomisation,
eligibility, visits, the ``analysis:`` plan) or from :attr:`StudyAnalysis.methods` and the
software actually installed, so the text cannot drift from what was run. A blinded report
names no arm: it gives the number of arms and the allocation ratio only.
"""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from immunorehab.study.analysis_plan import AnalysisPlan, Outcome
from immunorehab.study.protocol import MinimisationSettings, PermutedBlocksSettings, Protocol

__all__ = ["MethodsParagraph", "methods_paragraphs", "software_versions"]

#: Packages whose versions the methods and the provenance appendix state.
SOFTWARE = (
    "numpy",
    "pandas",
    "scipy",
    "statsmodels",
    "lifelines",
    "matplotlib",
    "flowio",
    "flowutils",
    "sqlalchemy",
)

_MODEL_TEXT = {
    "ancova": "ANCOVA of the follow-up value adjusted for its baseline value",
    "mmrm": "a mixed model for repeated measures (unstructured covariance across visits, arm-by-visit and "
    "baseline-by-visit terms)",
    "mixed": "a linear mixed model with a random intercept and slope per participant",
    "descriptive": "descriptive summaries only (no model, no p-value)",
}
_ROLE_TITLE = {
    "primary": "Primary outcome",
    "secondary": "Secondary outcomes",
    "exploratory": "Exploratory outcomes",
}
_POPULATION = {
    "itt": "intention to treat",
    "per_protocol": "per protocol",
    "both": "intention to treat and per protocol",
}


@dataclass(frozen=True, slots=True)
class MethodsParagraph:
    heading: str
    text: str


def software_versions() -> dict[str, str]:
    """Installed versions of Python, immunorehab and the numerical packages used."""
    from immunorehab import __version__

    out = {"python": platform.python_version(), "immunorehab": __version__}
    for name in SOFTWARE:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _join(items: Sequence[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _design(protocol: Protocol, blinded: bool) -> str:
    study = protocol.study
    reg = f" (registration {study.registry})" if study.registry else ""
    sites = _join([s.name for s in protocol.sites])
    head = f"{study.title}{reg}, protocol version {study.version}"
    if not protocol.randomised:
        return (
            f"{head}, is a prospective cohort study without randomisation. Participants were recruited at "
            f"{len(protocol.sites)} site(s): {sites}."
        )
    ratio = ":".join(str(a.ratio) for a in protocol.arms)
    if blinded:
        withheld = "arm names are withheld in this blinded report"
        arms = f"with {len(protocol.arms)} arms (allocation ratio {ratio}; {withheld})"
    else:
        labels = _join([a.label for a in protocol.arms])
        arms = f"comparing {labels} (allocation ratio {ratio})"
    return (
        f"{head}, is a parallel-group randomised trial {arms}. Participants were recruited at "
        f"{len(protocol.sites)} site(s): {sites}."
    )


def _eligibility(protocol: Protocol) -> str:
    if not protocol.eligibility:
        return "The protocol declares no eligibility criteria."
    return "Eligibility: " + "; ".join(c.description for c in protocol.eligibility) + "."


def _strata(protocol: Protocol) -> str:
    parts = [f"{f.name} ({', '.join(level.label for level in f.levels)})" for f in protocol.stratification]
    return _join(parts)


def _randomisation(protocol: Protocol) -> str:
    settings = protocol.randomisation
    concealment = (
        "Allocations were computed by the platform at the moment of randomisation from a concealed seed, "
        "and each allocation is stored with a SHA-256 hash chained to the previous one."
    )
    if isinstance(settings, PermutedBlocksSettings):
        sizes = _join([str(s) for s in settings.block_sizes(protocol.arms)])
        strata = f", stratified by {_strata(protocol)}" if protocol.stratification else ""
        return f"Randomisation used permuted blocks of random size {sizes}{strata}. {concealment}"
    if isinstance(settings, MinimisationSettings):
        weights = _join([f"{f.name} (weight {settings.weight(f.name):g})" for f in protocol.stratification])
        return (
            f"Randomisation used Pocock-Simon minimisation over {weights}, measuring imbalance by its "
            f"{settings.imbalance} and assigning the arm that minimises it with probability "
            f"{settings.probability:g}. {concealment}"
        )
    return "Participants were not randomised."


def _visits(protocol: Protocol) -> str:
    parts = []
    for v in protocol.visits:
        window = ""
        if v.window_before_days or v.window_after_days:
            window = f", window -{v.window_before_days}/+{v.window_after_days} days"
        parts.append(f"{v.label} (day {v.day}{window})")
    anchor = "randomisation" if protocol.randomised else "enrolment"
    return f"Visits were scheduled from {anchor}: " + "; ".join(parts) + "."


def _outcome_group(outcomes: Sequence[Outcome], plan: AnalysisPlan, protocol: Protocol) -> str:
    first = outcomes[0]
    visits = _join([protocol.visit(v).label for v in first.visits]) or "per participant (no visit)"
    scale = " on the log scale" if first.transform == "log" else ""
    population = (
        f", {_POPULATION[first.population]}" if protocol.randomised and first.model != "descriptive" else ""
    )
    family = ""
    if first.family:
        fam = plan.family(first.family)
        family = f" [family {fam.label or fam.id}, {plan.family_method(first.family)}]"
    labels = _join([o.label for o in outcomes])
    return f"{labels}: {first.model}{scale} at {visits}{population}{family}"


def _outcomes(protocol: Protocol, plan: AnalysisPlan) -> list[MethodsParagraph]:
    """Outcomes by role, those analysed alike listed together."""
    out = []
    for role, title in _ROLE_TITLE.items():
        groups: dict[tuple[object, ...], list[Outcome]] = {}
        for o in plan.outcomes:
            if o.role == role:
                key = (o.family, o.model, o.transform, tuple(o.visits), o.population)
                groups.setdefault(key, []).append(o)
        if groups:
            text = "; ".join(_outcome_group(g, plan, protocol) for g in groups.values()) + "."
            out.append(MethodsParagraph(title, text))
    return out


def _covariates(protocol: Protocol, plan: AnalysisPlan) -> str:
    names = plan.covariates
    if names is None:
        names = [f.name for f in protocol.stratification]
    return _join(list(names)) or "no further covariates"


def _models(protocol: Protocol, plan: AnalysisPlan, blinded: bool) -> str:
    used = sorted({o.model for o in plan.outcomes}, key=list(_MODEL_TEXT).index)
    models = "; ".join(f"{m}: {_MODEL_TEXT[m]}" for m in used)
    text = f"Models: {models}. Covariates: {_covariates(protocol, plan)}."
    if protocol.randomised and plan.reference_arm:
        if blinded:
            text += f" Each of {len(plan.contrasts)} intervention arm(s) is compared with the reference arm."
        else:
            ref = protocol.arm(plan.reference_arm).label
            arms = _join(
                [protocol.arm(c.arm).label + (" (primary)" if c.primary else "") for c in plan.contrasts]
            )
            text += f" Contrasts: {arms}, each against {ref}."
    if any(o.model == "mmrm" for o in plan.outcomes):
        df = "Kenward-Roger" if plan.df_method == "kenward-roger" else "Satterthwaite"
        text += f" MMRM degrees of freedom: {df}."
    text += (
        " Outcomes analysed on the log scale are reported as geometric-mean ratios (back-transformed "
        "estimates and confidence limits); others as adjusted mean differences."
    )
    return text


def _populations(protocol: Protocol, plan: AnalysisPlan, blinded: bool) -> str:
    text = "Intention to treat (ITT): every randomised participant, analysed in the arm allocated."
    imp = plan.imputation
    if imp is not None:
        text += (
            f" Missing follow-up values of ANCOVA outcomes were multiply imputed by chained equations "
            f"({imp.impute_with}, m = {imp.m} data sets, {imp.iterations} iterations, seed {imp.seed}) and "
            "estimates pooled by Rubin's rules."
        )
    pp = plan.per_protocol
    if pp is not None:
        arms = (
            "the rehabilitation arms"
            if blinded
            else _join([protocol.arm(a).label for a in pp.programme_arms])
        )
        text += (
            f" Per protocol: completers of {arms} (attended at least the programme's completer fraction of "
            "the offered sessions) and every participant of the other arms, without imputation."
        )
    return text


def _multiplicity(plan: AnalysisPlan) -> str:
    if not plan.families:
        return f"Two-sided tests at alpha = {plan.alpha:g}; no multiplicity adjustment was declared."
    fams = "; ".join(f"{f.label or f.id}: {plan.family_method(f.id)}" for f in plan.families)
    across = " and across contrasts" if plan.multiplicity.across_contrasts else ""
    return (
        f"Two-sided tests at alpha = {plan.alpha:g}. P-values were adjusted within each declared family of "
        f"outcomes{across} (Holm: family-wise error; BH: Benjamini-Hochberg false discovery rate): {fams}."
    )


def _cohort(protocol: Protocol, plan: AnalysisPlan) -> list[MethodsParagraph]:
    out = []
    if plan.group is not None:
        g = plan.group
        out.append(
            MethodsParagraph(
                "Groups",
                f"{g.label}: participants were grouped by {g.measure} at {protocol.visit(g.visit).label} "
                f"({g.true_label} vs {g.false_label}; reference {g.reference or g.false_label}).",
            )
        )
    if plan.normalisation:
        items = "; ".join(
            f"{n.label} (normal when {'<=' if n.normal == 'below' else '>='} {n.threshold:g}"
            + (f", {n.threshold_source}" if n.threshold_source else "")
            + ")"
            for n in plan.normalisation
        )
        out.append(
            MethodsParagraph(
                "Time to normalisation",
                f"{items}. Kaplan-Meier estimates by group with R-compatible confidence intervals, log-rank "
                "tests, and Cox models (Efron ties) with the group and the declared covariates; event times "
                f"are the scheduled visit days, in {plan.time_unit}.",
            )
        )
    if plan.prevalence:
        items = _join([p.label for p in plan.prevalence])
        out.append(MethodsParagraph("Prevalence", f"{items} per visit, with Wilson score 95% intervals."))
    return out


def _run_notes(methods: Mapping[str, Any]) -> list[MethodsParagraph]:
    """What the analysis run itself recorded: outcomes it could not analyse, and its warnings."""
    out = []
    skipped = [s for s in methods.get("skipped") or [] if isinstance(s, Mapping)]
    if skipped:
        text = "; ".join(f"{s.get('outcome')}: {s.get('reason')}" for s in skipped)
        out.append(MethodsParagraph("Outcomes not analysed", f"{text}."))
    warned = [str(w) for w in methods.get("warnings") or []]
    if warned:
        out.append(MethodsParagraph("Warnings raised by the analysis", "; ".join(warned) + "."))
    return out


def methods_paragraphs(
    protocol: Protocol, *, blinded: bool, analysis_methods: Mapping[str, Any] | None = None
) -> list[MethodsParagraph]:
    """The methods section as headed paragraphs (see the module docstring)."""
    paras = [
        MethodsParagraph("Design", _design(protocol, blinded)),
        MethodsParagraph("Participants", _eligibility(protocol)),
        MethodsParagraph("Visits", _visits(protocol)),
    ]
    if protocol.randomised:
        paras.append(MethodsParagraph("Randomisation", _randomisation(protocol)))
    plan = protocol.analysis
    if plan is not None:
        paras += _outcomes(protocol, plan)
        paras.append(MethodsParagraph("Statistical models", _models(protocol, plan, blinded)))
        if protocol.randomised:
            paras.append(MethodsParagraph("Analysis populations", _populations(protocol, plan, blinded)))
        else:
            paras += _cohort(protocol, plan)
        paras.append(MethodsParagraph("Multiplicity", _multiplicity(plan)))
    paras += _run_notes(analysis_methods or {})
    versions = software_versions()
    soft = ", ".join(f"{k} {v}" for k, v in versions.items())
    paras.append(MethodsParagraph("Software", f"Analyses and this report were produced with {soft}."))
    return paras
