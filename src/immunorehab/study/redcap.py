"""REDCap data dictionary for a protocol: the CSV REDCap imports to build a project.

The dictionary has one ``enrolment`` form with the record id ``participant_id`` and
every participant covariate of :data:`~immunorehab.study.fields.COVARIATES`, then one
form per visit (form name = visit id) whose variables are ``<visit id>_<measure id>``.

REDCap exports coded answers (radio buttons, yes/no) as raw codes; use
:func:`redcap_choice_codes` to map them back to immunorehab's values on import.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

import pandas as pd

from immunorehab.errors import ConfigError, Problem, ProtocolError
from immunorehab.study.fields import COVARIATES, Covariate
from immunorehab.study.protocol import Measure, Protocol, Visit

__all__ = [
    "RECORD_ID",
    "REDCAP_COLUMNS",
    "redcap_choice_codes",
    "redcap_data_dictionary",
    "write_redcap_data_dictionary",
]

#: The 18 columns of a REDCap data dictionary, in REDCap's order and spelling.
REDCAP_COLUMNS: tuple[str, ...] = (
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
)
RECORD_ID = "participant_id"
ENROLMENT_FORM = "enrolment"
#: REDCap variable and form names: lowercase letter first, then letters, digits, underscores.
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MAX_NAME = 100
_YESNO: dict[str, str | bool] = {"1": True, "0": False}

Row = dict[str, str]


def _row(name: str, form: str, field_type: str, label: str, **cells: str) -> Row:
    row = dict.fromkeys(REDCAP_COLUMNS, "")
    row.update({REDCAP_COLUMNS[0]: name, "Form Name": form, "Field Type": field_type, "Field Label": label})
    for key, value in cells.items():
        row[_CELL[key]] = value
    return row


_CELL = {
    "section": "Section Header",
    "choices": "Choices, Calculations, OR Slider Labels",
    "note": "Field Note",
    "validation": "Text Validation Type OR Show Slider Number",
    "vmin": "Text Validation Min",
    "vmax": "Text Validation Max",
    "identifier": "Identifier?",
    "required": "Required Field?",
}


def _number(value: float | None) -> str:
    """A bound as REDCap text: ``2000`` rather than ``2000.0``; empty when absent."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _choices_text(choices: dict[str, str]) -> str:
    """REDCap's choice syntax: ``1, female | 2, male | 3, other``."""
    return " | ".join(f"{code}, {label}" for code, label in choices.items())


def _codes(values: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Numeric codes 1..n in the declared order (stable as long as the order is)."""
    return {str(i): value for i, value in enumerate(values, start=1)}


def _site_codes(protocol: Protocol) -> dict[str, str]:
    return _codes([site.code for site in protocol.sites])


def _covariate_row(cov: Covariate, protocol: Protocol, first: bool) -> Row:
    cells: dict[str, str] = {"required": "y" if cov.required else ""}
    if first:
        cells["section"] = "Baseline covariates (pseudonymous)"
    if cov.name == "site":  # a text covariate, but the protocol lists the allowed codes
        labels = {
            code: f"{site.code}: {site.name}"
            for code, site in zip(_site_codes(protocol), protocol.sites, strict=True)
        }
        return _row(
            cov.name, ENROLMENT_FORM, "radio", cov.description, choices=_choices_text(labels), **cells
        )
    if cov.type == "integer":
        cells.update(validation="integer", vmin=_number(cov.minimum), vmax=_number(cov.maximum))
        return _row(cov.name, ENROLMENT_FORM, "text", cov.description, **cells)
    if cov.type == "boolean":
        return _row(cov.name, ENROLMENT_FORM, "yesno", cov.description, **cells)
    if cov.type == "choice":
        choices = _choices_text(_codes(cov.choices))
        return _row(cov.name, ENROLMENT_FORM, "radio", cov.description, choices=choices, **cells)
    if cov.type == "date":  # dates are identifiers for REDCap's de-identified exports
        cells.update(validation="date_ymd", identifier="y")
    return _row(cov.name, ENROLMENT_FORM, "text", cov.description, **cells)


def _variable(visit: Visit, measure: Measure) -> str:
    return f"{visit.id}_{measure.id}"


def _measure_row(visit: Visit, measure: Measure, first: bool) -> Row:
    cells: dict[str, str] = {"required": "y" if measure.required else "", "note": measure.unit or ""}
    if first:
        window = f"window {visit.window_before_days} days before to {visit.window_after_days} days after"
        cells["section"] = f"{visit.label}: target day {visit.day} after randomisation, {window}"
    name, form = _variable(visit, measure), visit.id
    if measure.type in ("number", "integer"):
        cells.update(validation=measure.type, vmin=_number(measure.min), vmax=_number(measure.max))
    elif measure.type == "date":
        cells["validation"] = "date_ymd"
    elif measure.type == "boolean":
        return _row(name, form, "yesno", measure.label, **cells)
    elif measure.type == "choice":
        choices = _choices_text(_codes(measure.choices))
        return _row(name, form, "radio", measure.label, choices=choices, **cells)
    return _row(name, form, "text", measure.label, **cells)


def _name_problems(rows: list[Row]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for row in rows:
        for column, what in ((REDCAP_COLUMNS[0], "variable"), ("Form Name", "form")):
            name = row[column]
            if not _NAME.match(name) or len(name) > _MAX_NAME:
                problems.append(
                    Problem(
                        f"REDCap {what} {name!r}",
                        f"must start with a lowercase letter, use only a-z, 0-9 and '_', and have at most "
                        f"{_MAX_NAME} characters; rename the visit or measure id (no '-', no leading digit)",
                    )
                )
        variable = row[REDCAP_COLUMNS[0]]
        if "|" in row["Choices, Calculations, OR Slider Labels"].replace(" | ", ""):
            problems.append(
                Problem(f"REDCap variable {variable!r}", "a choice contains '|', which REDCap cannot parse")
            )
        if variable in seen:
            problems.append(
                Problem(f"REDCap variable {variable!r}", "is defined twice; rename a visit or measure")
            )
        seen.add(variable)
    return list(dict.fromkeys(problems))


def redcap_data_dictionary(protocol: Protocol) -> pd.DataFrame:
    """The REDCap data dictionary of ``protocol``.

    Parameters
    ----------
    protocol
        A validated protocol.

    Returns
    -------
    pandas.DataFrame
        Exactly the 18 columns of :data:`REDCAP_COLUMNS` (all strings, empty when
        unused); the first row is the record id ``participant_id``, then one row per
        covariate (form ``enrolment``), then one row per measure of each visit.

    Raises
    ------
    ProtocolError
        A visit or measure id cannot form a REDCap variable or form name (one problem
        per name).

    Examples
    --------
    >>> dictionary = redcap_data_dictionary(protocol)  # doctest: +SKIP
    >>> dictionary.iloc[0, :4].tolist()  # doctest: +SKIP
    ['participant_id', 'enrolment', '', 'text']
    """
    rows = [_row(RECORD_ID, ENROLMENT_FORM, "text", "Participant ID (pseudonymous)")]
    rows += [_covariate_row(cov, protocol, i == 0) for i, cov in enumerate(COVARIATES.values())]
    for visit in protocol.visits:
        rows += [_measure_row(visit, m, i == 0) for i, m in enumerate(visit.measures)]
    problems = _name_problems(rows)
    if problems:
        raise ProtocolError(
            f"protocol {protocol.study.id!r} cannot be expressed as a REDCap project", problems
        )
    return pd.DataFrame(rows, columns=list(REDCAP_COLUMNS), dtype=object)


def redcap_choice_codes(protocol: Protocol) -> dict[str, dict[str, str | bool]]:
    """Map REDCap raw codes back to immunorehab values, per REDCap variable.

    Covers every coded variable of :func:`redcap_data_dictionary`: radio buttons
    (``site`` -> site codes, choice covariates and choice measures) and yes/no fields
    (``"1"`` -> ``True``, ``"0"`` -> ``False``).

    Parameters
    ----------
    protocol
        A validated protocol.

    Returns
    -------
    dict[str, dict[str, str | bool]]
        REDCap variable name -> {raw code -> value}, e.g. ``{"sex": {"1": "female", ...}}``.
    """
    codes: dict[str, dict[str, str | bool]] = {"site": dict(_site_codes(protocol))}
    for cov in COVARIATES.values():
        if cov.type == "choice":
            codes[cov.name] = dict(_codes(cov.choices))
        elif cov.type == "boolean":
            codes[cov.name] = dict(_YESNO)
    for visit in protocol.visits:
        for measure in visit.measures:
            if measure.type == "choice":
                codes[_variable(visit, measure)] = dict(_codes(measure.choices))
            elif measure.type == "boolean":
                codes[_variable(visit, measure)] = dict(_YESNO)
    return codes


def write_redcap_data_dictionary(
    protocol: Protocol, path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Write the REDCap data dictionary CSV atomically.

    The CSV is written to a temporary file in the target directory and moved into
    place, so a reader never sees a half-written file.

    Parameters
    ----------
    protocol
        A validated protocol.
    path
        Target CSV file (UTF-8).
    overwrite
        Replace an existing file (default: refuse).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ConfigError
        The file exists and ``overwrite`` is false, or its directory does not exist.
    ProtocolError
        The protocol cannot be expressed as a REDCap project.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise ConfigError(f"cannot write {target}: directory {target.parent} does not exist")
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} already exists: pass overwrite=True (--overwrite) to replace it")
    text = redcap_data_dictionary(protocol).to_csv(index=False, lineterminator="\n")
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        if overwrite:
            os.replace(tmp, target)
        else:
            _link_without_clobber(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return target


def _link_without_clobber(tmp: Path, target: Path) -> None:
    """Move ``tmp`` to ``target`` unless ``target`` appeared meanwhile (hard link is atomic)."""
    try:
        os.link(tmp, target)
    except FileExistsError as exc:
        raise ConfigError(
            f"{target} already exists: pass overwrite=True (--overwrite) to replace it"
        ) from exc
    except OSError:  # file system without hard links: best effort
        if target.exists():
            raise ConfigError(
                f"{target} already exists: pass overwrite=True (--overwrite) to replace it"
            ) from None
        os.replace(tmp, target)
