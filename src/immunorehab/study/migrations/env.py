"""Alembic environment: runs on the connection the store hands over (never on its own)."""

from __future__ import annotations

from alembic import context

from immunorehab.study.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the store always passes a connection
    raise RuntimeError("immunorehab migrations run through immunorehab.study.store.Store.open()")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
