"""Panel files (marker,channel): parsing, every problem reported at once, and missing-channel messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from immunorehab.cytometry.panel import Panel, missing_channels_message
from immunorehab.errors import PanelError


def test_reads_a_panel_with_bom_extra_columns_and_blank_rows(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(
        "\ufeffMarker,Channel,fluorochrome\nCD3,BUV395-A,BUV395\n\n CD4 , BV605-A ,BV605\n", encoding="utf-8"
    )
    panel = Panel.from_csv(path)
    assert panel.entries == (("CD3", "BUV395-A"), ("CD4", "BV605-A"))
    assert panel.channel("CD3") == "BUV395-A"
    assert panel.channel("FSC-A") == "FSC-A"  # names the panel does not list pass through
    assert panel.source == str(path)


def test_every_problem_is_listed(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("marker,channel\nCD3,BUV395-A\nCD3,BV605-A\nCD8,BUV395-A\nCD57,\n")
    with pytest.raises(PanelError) as info:
        Panel.from_csv(path)
    text = str(info.value)
    assert "row 3: marker 'CD3' already mapped on row 2" in text
    assert "row 4: channel 'BUV395-A' already used on row 2" in text
    assert "row 5: marker and channel are both required" in text


def test_missing_columns_name_what_was_found(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("antigen,detector\nCD3,BUV395-A\n")
    with pytest.raises(PanelError, match="column\\(s\\) marker, channel missing.*found antigen, detector"):
        Panel.from_csv(path)


def test_missing_file() -> None:
    with pytest.raises(PanelError, match="does not exist"):
        Panel.from_csv("/nonexistent/panel.csv")


def test_empty_panel_is_refused() -> None:
    with pytest.raises(PanelError, match="no rows"):
        Panel.from_text("marker,channel\n")


def test_hash_ignores_row_order_but_not_mapping() -> None:
    a = Panel.from_pairs([("CD3", "A"), ("CD4", "B")])
    b = Panel.from_pairs([("CD4", "B"), ("CD3", "A")])
    c = Panel.from_pairs([("CD3", "B"), ("CD4", "A")])
    assert a.sha256 == b.sha256 != c.sha256
    assert Panel.from_text(a.to_csv_text()).entries == a.entries


def test_missing_channel_message_names_marker_file_and_channels() -> None:
    message = missing_channels_message(
        needed={"CD3": "BUV395-A", "CD4": "BV999-A", "CD8": "CD8"},
        channels=("FSC-A", "BUV395-A"),
        markers=("", "CD3"),
        file="tube1.fcs",
        panel_source="panel.csv",
    )
    assert message is not None
    assert message.startswith("tube1.fcs: marker 'CD4' -> channel 'BV999-A' (panel panel.csv)")
    assert "'CD8' (not mapped by panel panel.csv" in message
    assert "The file has channels FSC-A, BUV395-A (CD3)" in message
    assert (
        missing_channels_message(
            needed={"CD3": "BUV395-A"}, channels=("BUV395-A",), markers=("CD3",), file="f", panel_source=None
        )
        is None
    )
