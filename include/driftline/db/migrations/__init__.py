"""Alembic revisions of the deployment schema (versions/), and the helper they write SQL with."""

from __future__ import annotations


def execute(*statements: str) -> None:
    """Emit each statement with {s} as the quoted deployment schema and {name} as its text literal."""
    from alembic import context, op
    from psycopg import sql

    schema = context.config.attributes["schema"]
    names = {"s": sql.Identifier(schema), "name": sql.Literal(schema)}
    for statement in statements:
        op.execute(sql.SQL(statement).format(**names).as_string(None))
