"""The whole exception tree of immunorehab.

Every error a user can cause (a bad file, a wrong column, an impossible value, a
refused action) is a subclass of :class:`ImmunorehabError`, so the CLI and the web
app translate exactly one root into a clear message and a non-zero exit::

    ImmunorehabError (ValueError)
    ├── ConfigError              bad settings: database URL, unknown user, ...
    ├── ProtocolError            protocol file invalid (carries every problem)
    ├── StudyError               study-level actions that cannot be done
    │   ├── StoreError           the database cannot be opened or migrated
    │   ├── NotFoundError        participant/visit/user/study does not exist
    │   ├── PermissionDenied     the user's role may not do this
    │   ├── EligibilityError     randomising someone ineligible/unconsented/withdrawn
    │   ├── AlreadyRandomised    a participant is randomised at most once
    │   └── IntegrityError       a hash chain is broken (tampering or corruption)
    ├── DataValidationError      imported rows / visit values invalid (carries every problem)
    ├── RehabError               rehabilitation programme, prescription, session log, progression
    ├── CytometryError           FCS files, compensation, transforms, gating, panels, batches
    ├── CytokineError            plates, standard curves, assay rules
    └── AnalysisError            statistical analysis, reports, whole-study simulation

Warnings derive from :class:`ImmunorehabWarning`. Each capability section below may add
subclasses of its root (keep them here: this module is the whole tree).

Exceptions keep their structured context (``problems``) and stay picklable so that
worker processes can send them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AlreadyRandomised",
    "AnalysisError",
    "CytokineError",
    "CytometryError",
    "RehabError",
    "ConfigError",
    "DataValidationError",
    "EligibilityError",
    "ImmunorehabError",
    "ImmunorehabWarning",
    "IntegrityError",
    "NotFoundError",
    "PermissionDenied",
    "Problem",
    "ProtocolError",
    "StoreError",
    "StudyError",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in an input: where it is and what is expected.

    ``location`` names the file/row/field or key path (e.g. ``arms[2].ratio`` or
    ``row 12, field age_years``); ``message`` says what was found and what is allowed.
    """

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class ImmunorehabError(ValueError):
    """Root of every error immunorehab raises for bad input or refused actions."""


class ImmunorehabWarning(UserWarning):
    """Root of immunorehab's warnings."""


class _ProblemsError(ImmunorehabError):
    """An error carrying a list of :class:`Problem` (all found at once)."""

    def __init__(self, summary: str, problems: Sequence[Problem] = ()) -> None:
        self.summary = summary
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(summary, self.problems)

    def __str__(self) -> str:
        if not self.problems:
            return self.summary
        lines = [self.summary] + [f"  - {p}" for p in self.problems]
        return "\n".join(lines)

    def __reduce__(self) -> tuple[type, tuple[str, tuple[Problem, ...]]]:
        return (type(self), (self.summary, self.problems))


class ConfigError(ImmunorehabError):
    """Bad configuration: database URL, missing --user, unknown setting."""


class ProtocolError(_ProblemsError):
    """The protocol file is invalid; ``problems`` lists every problem found."""


class DataValidationError(_ProblemsError):
    """Imported rows or recorded values are invalid; ``problems`` lists each one."""


class StudyError(ImmunorehabError):
    """A study action that cannot be carried out."""


class StoreError(StudyError):
    """The store cannot be opened, migrated or written."""


class NotFoundError(StudyError):
    """A participant, visit, user or study does not exist."""


class PermissionDenied(StudyError):
    """The acting user's role is not allowed to do this."""


class EligibilityError(StudyError):
    """Randomisation refused: participant ineligible, unconsented or withdrawn."""


class AlreadyRandomised(StudyError):
    """The participant already has an allocation."""


class IntegrityError(StudyError):
    """A hash chain (allocations or audit trail) does not verify."""


# -- rehab --------------------------------------------------------------------------------


class RehabError(ImmunorehabError):
    """Root of rehabilitation errors: programme file, prescription, session log, progression."""


# -- cytometry ----------------------------------------------------------------------------


class CytometryError(ImmunorehabError):
    """Root of flow-cytometry errors: FCS files, compensation, transforms, gating, batches."""


# -- cytokines ----------------------------------------------------------------------------


class CytokineError(ImmunorehabError):
    """Root of cytokine-assay errors: plate maps, readings, standard curves, assay rules."""


# -- analysis -----------------------------------------------------------------------------


class AnalysisError(ImmunorehabError):
    """Root of analysis errors: statistics, protocol-driven analyses, reports, simulation."""
