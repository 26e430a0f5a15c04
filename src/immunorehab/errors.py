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
    │   ├── ProgrammeError       programme file invalid (carries every problem)
    │   ├── AssessmentError      baseline assessment missing/inconsistent (carries every problem)
    │   ├── SessionLogError      session log / CSV import invalid (also a DataValidationError)
    │   ├── PrescriptionError    no programme for the arm, not prescribed yet, ...
    │   └── ClearanceError       clinical-review clearance refused
    ├── CytometryError           FCS files, compensation, transforms, gating, panels, batches
    │   ├── FCSReadError         FCS/LMD file unreadable: corrupt, truncated, unsupported layout
    │   │   ├── FCSOffsetError   HEADER/TEXT DATA offsets disagree or are off by one (override needed)
    │   │   └── FCSDatasetError  multi-dataset file read without choosing a dataset, or no such dataset
    │   ├── CompensationError    spillover matrix invalid or not matching the channels
    │   ├── TransformError       transform parameters invalid
    │   ├── GateError            gate declaration invalid or not evaluable on a sample
    │   ├── GatingMLError        Gating-ML file invalid (carries every problem)
    │   ├── FlowJoError          FlowJo workspace invalid or unsupported (carries every problem)
    │   ├── PanelError           panel file invalid, or a marker's channel missing from the file
    │   ├── TemplateError        unknown gating template, or one auto-placement cannot use
    │   ├── ManifestError        batch manifest invalid (carries every problem)
    │   ├── BatchError           a batch cannot run, or one of its files failed
    │   └── FcsSimulationError   synthetic-FCS settings impossible
    ├── CytokineError            plates, standard curves, assay rules
    │   ├── CurveFitError        a failed curve used for back-calculation
    │   ├── AssayConfigError     assay YAML invalid (carries every problem)
    │   ├── PlateError           plate map / reader file invalid (carries every problem)
    │   └── ReferenceTableError  healthy-reference table invalid (carries every problem)
    └── AnalysisError            statistical analysis, reports, whole-study simulation
        ├── ReportError          the study report cannot be built (no study data, output folder, blinding)
        └── SimulationError      a whole-study simulation cannot run (unknown preset/effect, folder taken)

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
    "AnalysisDataError",
    "AnalysisError",
    "AnalysisPlanError",
    "OutcomeDataError",
    "AnalysisWarning",
    "ModelFitError",
    "ReportError",
    "SimulationError",
    "SingularFitWarning",
    "AssayConfigError",
    "CurveFitError",
    "CytokineError",
    "CytokineWarning",
    "PlateError",
    "ReferenceTableError",
    "CytometryError",
    "CompensationError",
    "FCSDatasetError",
    "FCSOffsetError",
    "FCSReadError",
    "FCSStandardWarning",
    "FlowJoError",
    "GateError",
    "GatingMLError",
    "TransformError",
    "AutoGateWarning",
    "BatchError",
    "FcsSimulationError",
    "ManifestError",
    "PanelError",
    "TemplateError",
    "RehabError",
    "AssessmentError",
    "ClearanceError",
    "PrescriptionError",
    "ProgrammeError",
    "RehabWarning",
    "SessionLogError",
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


class ProgrammeError(_ProblemsError, RehabError):
    """The rehabilitation programme file is invalid; ``problems`` lists every problem found."""


class AssessmentError(_ProblemsError, RehabError):
    """Baseline assessment data missing or inconsistent for a prescription (every problem listed)."""


class SessionLogError(DataValidationError, RehabError):
    """A session log (or CSV import) has impossible or inconsistent values; nothing was stored."""


class PrescriptionError(RehabError):
    """A prescription cannot be made or used (no programme for the arm, not prescribed yet, ...)."""


class ClearanceError(RehabError):
    """A clinical-review clearance is refused (nothing flagged, already cleared, no reason)."""


class RehabWarning(ImmunorehabWarning):
    """A rehabilitation value is usable but outside the range its equation was validated for."""


# -- cytometry ----------------------------------------------------------------------------


class CytometryError(ImmunorehabError):
    """Root of flow-cytometry errors: FCS files, compensation, transforms, gating, batches."""


class FCSReadError(CytometryError):
    """An FCS/LMD file cannot be read: corrupt, truncated, missing keywords or unsupported layout."""


class FCSOffsetError(FCSReadError):
    """The DATA offsets in HEADER and TEXT disagree, or $ENDDATA is off by one byte.

    Reading such a file needs an explicit ``data_offset_fix`` choice (see ``read_fcs``).
    """


class FCSDatasetError(FCSReadError):
    """A multi-dataset file ($NEXTDATA) was read without ``dataset=``, or the dataset does not exist."""


class CompensationError(CytometryError):
    """A spillover matrix is invalid (shape, values, singular) or does not match the sample's channels."""


class TransformError(CytometryError):
    """A transform's parameters are invalid (e.g. logicle with W > M / 2)."""


class GateError(CytometryError):
    """A gate declaration is invalid, or cannot be evaluated on a sample (unknown channel, parent, ...)."""


class GatingMLError(_ProblemsError, CytometryError):
    """A Gating-ML 2.0 file is invalid; ``problems`` names each element at fault."""


class FlowJoError(_ProblemsError, CytometryError):
    """A FlowJo workspace is invalid or uses something we cannot reproduce; ``problems`` lists each."""


class FCSStandardWarning(ImmunorehabWarning):
    """An FCS file breaks the standard in a way we can work around (the message says how)."""


# cytometry pipeline: panels, templates, auto-gating, manifests, batches, synthetic files


class PanelError(CytometryError):
    """A panel file is invalid or maps a marker to a channel the FCS file does not have."""


class TemplateError(CytometryError):
    """A gating template is unknown, or does not fit automatic gate placement."""


class ManifestError(_ProblemsError, CytometryError):
    """A batch manifest is invalid; ``problems`` names every row and field at fault."""


class BatchError(CytometryError):
    """A batch cannot run (output folder, scheduler, strategy) or one of its files failed."""


class FcsSimulationError(CytometryError):
    """Synthetic-FCS settings are impossible (fractions out of range, too few events)."""


class AutoGateWarning(ImmunorehabWarning):
    """Automatic gate placement kept a template position (no clear valley or cluster)."""


# -- cytokines ----------------------------------------------------------------------------


class CytokineError(ImmunorehabError):
    """Root of cytokine-assay errors: plate maps, readings, standard curves, assay rules."""


class CurveFitError(CytokineError):
    """A standard curve cannot be used as asked (e.g. back-calculating from a failed curve).

    A curve that cannot be *fitted* is not an error: it gets status ``failed`` with the reason.
    """


class AssayConfigError(_ProblemsError, CytokineError):
    """The assay configuration (YAML) is invalid; ``problems`` lists every problem found."""


class PlateError(_ProblemsError, CytokineError):
    """A plate map or plate-reader file is invalid; ``problems`` names each row/well at fault."""


class ReferenceTableError(_ProblemsError, CytokineError):
    """A healthy-reference table is invalid; ``problems`` lists each row at fault."""


class CytokineWarning(ImmunorehabWarning):
    """Something in a plate deserves attention but does not stop the analysis."""


# -- analysis -----------------------------------------------------------------------------


class AnalysisError(ImmunorehabError):
    """Root of analysis errors: statistics, protocol-driven analyses, reports, simulation."""


class AnalysisDataError(AnalysisError):
    """The data given to a statistical analysis cannot be analysed as asked.

    Raised for a missing column, a non-numeric value where a number is needed, too few
    observations, a non-positive value under a log transform, or a reference level that
    does not occur. The message names the column, the value found and what is expected.
    """


class ModelFitError(AnalysisError):
    """A statistical model could not be fitted (no convergence, singular design)."""


class ReportError(AnalysisError):
    """The study report cannot be built: nothing to report yet, output folder taken, blinding breached."""


class SimulationError(AnalysisError):
    """A whole-study simulation cannot run as asked: unknown preset or effect, output folder taken."""


class AnalysisPlanError(AnalysisError):
    """The study's protocol has no ``analysis:`` section, or the plan cannot be run as asked."""


class OutcomeDataError(AnalysisError):
    """A declared outcome has no data in the store (the message says what is stored instead)."""


class AnalysisWarning(ImmunorehabWarning):
    """Something in an analysis that the statistician should look at (the result stands)."""


class SingularFitWarning(AnalysisWarning):
    """A variance component was estimated on the boundary (zero variance or |corr| = 1)."""
