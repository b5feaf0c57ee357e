"""Database names a config may choose: a schema or role driftline creates and owns.

PostgreSQL keeps its own objects in public, information_schema and the pg_* schemas (pg_catalog,
pg_toast*, pg_temp*: a name starting with pg_ is refused by CREATE SCHEMA anyway), and a reserved
keyword needs quoting in every query a person types against it.
"""

from __future__ import annotations

from driftline.config.checks import IDENTIFIER

SYSTEM_SCHEMAS = frozenset({"public", "information_schema"})

# PostgreSQL's reserved key words (docs, appendix C: "reserved" and "reserved (can be function or type)"),
# plus the few SQLAlchemy also treats as reserved for PostgreSQL (between, new, of, off, old, over).
RESERVED_KEYWORDS = frozenset(
    """all analyse analyze and any array as asc asymmetric authorization between binary both case cast check
    collate collation column concurrently constraint create cross current_catalog current_date current_role
    current_schema current_time current_timestamp current_user default deferrable desc distinct do else end
    except false fetch for foreign freeze from full grant group having ilike in initially inner intersect into
    is isnull join lateral leading left like limit localtime localtimestamp natural new not notnull null of off
    offset old on only or order outer over overlaps placing primary references returning right select
    session_user similar some symmetric system_user table tablesample then to trailing true union unique user
    using variadic verbose when where window with""".split()
)


def owned_name(value: str) -> str:
    """A schema or role name driftline creates: lower_snake_case, at most 63 bytes, not PostgreSQL's own
    (public, information_schema, pg_*) and not a reserved SQL keyword."""
    if not IDENTIFIER.match(value):
        raise ValueError("must be a lower_snake_case identifier of at most 63 characters")
    if value in SYSTEM_SCHEMAS or value.startswith("pg_"):
        raise ValueError(
            f"= {value!r} is PostgreSQL's own (public, information_schema, pg_*); "
            "name one for this dataset, e.g. 'driftline_<dataset>'"
        )
    if value in RESERVED_KEYWORDS:
        raise ValueError(f"= {value!r} is a reserved SQL keyword; choose another name")
    return value
