"""Assay configuration: analytes, units, curve models and the acceptance rules (YAML, strict).

Defaults follow domain.md D3: standards recovery 80-120%, replicate CV <= 20%, at least 35
beads per region (MILLIPLEX), LLOQ/ULOQ = lowest/highest standards recovering within the
window with acceptable CV, LOD = blank mean + 3 SD. The rule for values below LLOQ and above
ULOQ is fixed here, before any data are seen, so nothing is substituted silently.

Example::

    assay:
      id: lc-panel-v1
      name: Long-COVID cytokine panel
      platform: luminex
    defaults: {model: 5PL, weights: 1/y2}
    analytes:
      - {name: IL-6, unit: pg/mL}
      - {name: TNF-a, unit: pg/mL, model: 4PL}
    rules:
      recovery: [0.8, 1.2]
      cv_max: 0.2
      min_beads: 35
      below_lloq: lloq_half
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from immunorehab.cytokines.curves import WeightScheme
from immunorehab.cytokines.models import ModelName, SEMethod
from immunorehab.errors import AssayConfigError, Problem

__all__ = [
    "AboveRule",
    "AnalyteConfig",
    "AssayConfig",
    "AssayInfo",
    "AssayRules",
    "BelowRule",
    "load_assay",
    "parse_assay",
]

#: ``censored``: no number, flag only (analyse as left-censored); ``lloq_half``: LLOQ/2;
#: ``lloq_sqrt2``: LLOQ/sqrt(2); ``lloq``: the LLOQ itself.
BelowRule = Literal["censored", "lloq_half", "lloq_sqrt2", "lloq"]
#: ``censored``: no number (re-assay diluted); ``uloq``: the ULOQ itself.
AboveRule = Literal["censored", "uloq"]
Platform = Literal["luminex", "elisa", "msd", "other"]
Fraction = Annotated[float, Field(gt=0)]
Window = Annotated[list[Fraction], Field(min_length=2, max_length=2)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class AssayInfo(_Model):
    id: Annotated[str, Field(min_length=1, max_length=64)]
    name: str
    platform: Platform = "luminex"
    kit: str | None = None
    lot: str | None = None


class CurveDefaults(_Model):
    model: ModelName = "5PL"
    weights: Literal["1/y2", "1/var", "none"] = "1/y2"
    se_method: SEMethod = "jacobian"


class AnalyteConfig(_Model):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    unit: str = "pg/mL"
    model: ModelName | None = None
    weights: Literal["1/y2", "1/var", "none"] | None = None
    bead_region: int | None = None
    #: Other spellings found in instrument exports (e.g. ``IL-6 (19)``, ``TNFa``).
    aliases: list[str] = Field(default_factory=list)


class AssayRules(_Model):
    recovery: Window = Field(default_factory=lambda: [0.8, 1.2])
    #: Recovery window at the LLOQ/ULOQ standards (FDA-style LBA allows +-25%); default = recovery.
    recovery_at_limits: Window | None = None
    cv_max: Annotated[float, Field(gt=0, le=1)] = 0.20
    min_beads: Annotated[int, Field(ge=0)] = 35
    lod_k_sd: Annotated[float, Field(gt=0)] = 3.0
    below_lloq: BelowRule = "lloq_half"
    above_uloq: AboveRule = "censored"
    r_squared_min: Annotated[float, Field(ge=0, le=1)] = 0.99
    default_dilution: Annotated[float, Field(gt=0)] = 1.0

    @model_validator(mode="after")
    def _windows(self) -> AssayRules:
        for name in ("recovery", "recovery_at_limits"):
            window = getattr(self, name)
            if window is not None and not window[0] < 1.0 < window[1]:
                raise ValueError(f"{name} must be [low, high] with low < 1 < high, got {list(window)}")
        return self


class AssayConfig(_Model):
    assay: AssayInfo
    defaults: CurveDefaults = CurveDefaults()
    analytes: Annotated[list[AnalyteConfig], Field(min_length=1)]
    rules: AssayRules = AssayRules()

    @model_validator(mode="after")
    def _unique(self) -> AssayConfig:
        seen: set[str] = set()
        for a in self.analytes:
            for label in (a.name, *a.aliases):
                key = label.casefold()
                if key in seen:
                    raise ValueError(f"analyte name or alias {label!r} is used twice")
                seen.add(key)
        return self

    def analyte(self, name: str) -> AnalyteConfig:
        """The analyte called ``name`` (or one of its aliases, case-insensitive)."""
        key = name.strip().casefold()
        for a in self.analytes:
            if key == a.name.casefold() or key in (x.casefold() for x in a.aliases):
                return a
        raise KeyError(name)

    def canonical(self, name: str) -> str | None:
        """The configured name for ``name`` (alias-aware), or None when not in the assay."""
        try:
            return self.analyte(name).name
        except KeyError:
            return None

    def model_for(self, name: str) -> ModelName:
        return self.analyte(name).model or self.defaults.model

    def weights_for(self, name: str) -> WeightScheme:
        scheme = self.analyte(name).weights or self.defaults.weights
        return None if scheme == "none" else scheme

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.analytes]


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_assay(text: str, source: str = "<assay>") -> AssayConfig:
    """Parse and validate assay YAML.

    Raises
    ------
    AssayConfigError
        Invalid YAML or configuration; ``problems`` lists each, located by key path.
    """
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}: line {mark.line + 1}, column {mark.column + 1}" if mark else source
        raise AssayConfigError(
            f"{source} is not valid YAML", [Problem(where, str(exc).splitlines()[0])]
        ) from None
    if not isinstance(raw, dict):
        raise AssayConfigError(
            f"{source} is not an assay configuration",
            [Problem(source, "expected a mapping with keys assay, defaults, analytes, rules")],
        )
    try:
        return AssayConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            got = f" (got {err['input']!r})" if err["type"] not in ("missing",) and "input" in err else ""
            msg = str(err["msg"]).removeprefix("Value error, ")
            problems.append(Problem(f"{source}: {_loc(tuple(err['loc'])) or '(top level)'}", f"{msg}{got}"))
        noun = "problem" if len(problems) == 1 else "problems"
        raise AssayConfigError(
            f"{source}: invalid assay configuration ({len(problems)} {noun})", problems
        ) from None


def load_assay(path: str | os.PathLike[str]) -> AssayConfig:
    """Read and validate an assay YAML file (see :func:`parse_assay`)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise AssayConfigError(
            f"cannot read assay file {p}", [Problem(str(p), exc.strerror or str(exc))]
        ) from None
    return parse_assay(text, source=str(p))
