"""Panel files: which instrument channel carries which marker.

A panel is a CSV with columns ``marker,channel`` (one row per marker, e.g. ``CD3,BUV395-A``).
Templates name dimensions by marker; the panel maps them to a file's ``$PnN`` channels, so
one template serves every instrument and fluorochrome choice. Scatter and time names
(``FSC-A``, ``Time``) may be mapped too; names the panel does not list stay as they are.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from immunorehab.errors import PanelError

__all__ = ["Panel", "missing_channels_message"]


@dataclass(frozen=True, slots=True)
class Panel:
    """A marker -> channel mapping read from a panel file.

    Attributes
    ----------
    entries : tuple of (marker, channel)
        In file order; markers and channels are unique.
    source : str
        Where the panel came from (file path or description), used in messages.
    """

    entries: tuple[tuple[str, str], ...]
    source: str

    @classmethod
    def from_csv(cls, path: str | Path) -> Panel:
        """Read a panel CSV (columns ``marker,channel``; other columns are ignored).

        Raises
        ------
        PanelError
            The file is missing or unreadable, a column is missing, or rows are blank or
            repeat a marker or channel; the message names every row at fault.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise PanelError(f"panel file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise PanelError(f"panel file {path} cannot be read as UTF-8 text: {exc}") from None
        return cls.from_text(text, source=str(path))

    @classmethod
    def from_text(cls, text: str, *, source: str = "panel") -> Panel:
        """Parse panel CSV text (see :meth:`from_csv`)."""
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip().lower() for h in reader.fieldnames or []]
        missing = [c for c in ("marker", "channel") if c not in header]
        if missing:
            raise PanelError(
                f"panel {source}: column(s) {', '.join(missing)} missing; "
                "expected a header 'marker,channel', "
                f"found {', '.join(reader.fieldnames or []) or 'no header'}"
            )
        rows = []
        for raw in reader:
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
            rows.append((row.get("marker", ""), row.get("channel", "")))
        return cls.from_pairs(rows, source=source)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]], *, source: str = "panel") -> Panel:
        """Build a panel from ``(marker, channel)`` pairs, checking blanks and duplicates."""
        problems: list[str] = []
        seen_markers: dict[str, int] = {}
        seen_channels: dict[str, int] = {}
        entries: list[tuple[str, str]] = []
        for line, (marker, channel) in enumerate(pairs, start=2):
            marker, channel = marker.strip(), channel.strip()
            if not marker and not channel:
                continue
            if not marker or not channel:
                problems.append(
                    f"row {line}: marker and channel are both required, got {marker!r}, {channel!r}"
                )
                continue
            if marker in seen_markers:
                problems.append(f"row {line}: marker {marker!r} already mapped on row {seen_markers[marker]}")
            if channel in seen_channels:
                problems.append(
                    f"row {line}: channel {channel!r} already used on row {seen_channels[channel]}"
                )
            seen_markers.setdefault(marker, line)
            seen_channels.setdefault(channel, line)
            entries.append((marker, channel))
        if not entries and not problems:
            problems.append("no rows: list one 'marker,channel' row per marker")
        if problems:
            raise PanelError(f"panel {source} is invalid:\n" + "\n".join(f"  - {p}" for p in problems))
        return cls(tuple(entries), source)

    @property
    def mapping(self) -> dict[str, str]:
        """``{marker: channel}``."""
        return dict(self.entries)

    @property
    def markers(self) -> tuple[str, ...]:
        return tuple(m for m, _ in self.entries)

    def channel(self, name: str) -> str:
        """The channel of a marker; a name the panel does not list is returned unchanged."""
        return self.mapping.get(name, name)

    @property
    def sha256(self) -> str:
        """Hash of the mapping (order-independent): part of a batch's strategy hash."""
        canon = "\n".join(f"{m}\t{c}" for m, c in sorted(self.entries))
        return hashlib.sha256(canon.encode("utf-8")).hexdigest()

    def to_csv_text(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["marker", "channel"])
        writer.writerows(self.entries)
        return out.getvalue()


def missing_channels_message(
    *,
    needed: Mapping[str, str],
    channels: Sequence[str],
    markers: Sequence[str],
    file: str,
    panel_source: str | None,
) -> str | None:
    """The error message when channels a strategy needs are not in a file (None when all are).

    ``needed`` maps each name used by the template (a marker such as ``CD3``) to the channel
    it resolved to (the same name when the panel does not map it). The message names each
    missing marker, the channel expected, the file and the channels (with their ``$PnS``
    markers) that the file has.
    """
    present = set(channels)
    absent = [(name, channel) for name, channel in needed.items() if channel not in present]
    if not absent:
        return None
    listed = ", ".join(f"{c} ({m})" if m else c for c, m in zip(channels, markers, strict=False))
    via = f"panel {panel_source}" if panel_source else "no panel"
    mapped = [f"marker {n!r} -> channel {c!r}" for n, c in absent if n != c]
    unmapped = [repr(n) for n, c in absent if n == c]
    parts = [f"{'; '.join(mapped)} ({via})"] if mapped else []
    if unmapped:
        parts.append(f"{', '.join(unmapped)} (not mapped by {via}, and no channel has that name)")
    return (
        f"{file}: {'; '.join(parts)} not in the file. The file has channels {listed}. "
        "Fix the panel (columns marker,channel; channels are $PnN names, case-sensitive)."
    )
