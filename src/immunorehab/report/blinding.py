"""Who gets which report, and the last check that a blinded report names no arm.

Only ``statistician`` and ``admin`` receive the unblinded (by-arm) report; every other role
gets the blinded report, whatever it asks for. Before a blinded report is written, its whole
text, including the text inside every embedded SVG figure, is searched for each arm's id and
label (case-insensitive); the registered study title, which is public and may name the
interventions, is the only text exempt. A hit stops the build: nothing is written.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable

from immunorehab.study.protocol import Protocol

__all__ = [
    "CONCEALED",
    "UNBLINDED_REPORT_ROLES",
    "arm_mentions",
    "redact_arms",
    "report_is_blinded",
    "visible_text",
]

UNBLINDED_REPORT_ROLES: tuple[str, ...] = ("statistician", "admin")
#: What a blinded report shows in place of an arm named in free text (a withdrawal reason, an AE term).
CONCEALED = "[arm concealed]"
_SVG_URI = re.compile(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)")


def report_is_blinded(role: str, *, asked_blinded: bool) -> bool:
    """Whether ``role`` gets the blinded report (always, unless statistician or admin)."""
    return asked_blinded or role not in UNBLINDED_REPORT_ROLES


def visible_text(document: str) -> str:
    """The HTML with entities decoded and every embedded SVG figure decoded and appended."""
    figures = [base64.b64decode(m).decode("utf-8", "replace") for m in _SVG_URI.findall(document)]
    return html.unescape("\n".join([_SVG_URI.sub("", document), *figures]))


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).lower()


def arm_mentions(text: str, protocol: Protocol, *, exempt: Iterable[str] = ()) -> list[str]:
    """Arm ids and labels of ``protocol`` found in ``text`` (after removing the exempt phrases).

    Ids match as whole words (``_`` counts as a word character), labels as phrases; both
    ignore case and runs of white space.
    """
    body = _normalise(text)
    for phrase in (protocol.study.title, *exempt):
        body = body.replace(_normalise(phrase), " ")
    found = []
    for arm in protocol.arms:
        if re.search(rf"(?<![a-z0-9_]){re.escape(arm.id.lower())}(?![a-z0-9_])", body):
            found.append(arm.id)
        if _normalise(arm.label) in body:
            found.append(arm.label)
    return found


def redact_arms(text: str, protocol: Protocol) -> str:
    """``text`` with every arm label and id (case-insensitive; ids as whole words) replaced by
    :data:`CONCEALED`: free text typed by staff (withdrawal reasons, adverse-event terms) may name
    the arm a participant was in."""
    out = text
    for arm in sorted(protocol.arms, key=lambda a: -len(a.label)):
        out = re.sub(re.escape(arm.label).replace(r"\ ", r"\s+"), CONCEALED, out, flags=re.IGNORECASE)
    for arm in protocol.arms:
        out = re.sub(
            rf"(?<![A-Za-z0-9_]){re.escape(arm.id)}(?![A-Za-z0-9_])", CONCEALED, out, flags=re.IGNORECASE
        )
    return out
