"""The demo's embedded protocol is the shipped example, and the schema head is what the store expects."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory

from immunorehab.study.demo import default_protocol_path
from immunorehab.study.store import SCHEMA_HEAD

REPO = Path(__file__).resolve().parents[3]


def test_embedded_protocol_is_the_example_file() -> None:
    example = REPO / "examples" / "protocols" / "phosp_r_immune.yaml"
    assert default_protocol_path().read_bytes() == example.read_bytes()


def test_store_schema_head_matches_the_newest_migration() -> None:
    migrations = REPO / "src" / "immunorehab" / "study" / "migrations"
    assert ScriptDirectory(str(migrations)).get_current_head() == SCHEMA_HEAD
