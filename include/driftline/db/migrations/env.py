"""Alembic environment: render the revisions of one deployment schema as SQL (offline mode).

driftline runs that SQL itself (db.schema.ensure_schema) on its own connection, under its lock.
The schema comes from config.attributes["schema"], or `-x schema=<name>` on the alembic command
line: `alembic -c <cfg> -x schema=fraud upgrade head --sql` prints what `driftline init-db` runs.
"""

from alembic import context

from driftline.db.schema import VERSION_TABLE

config = context.config
schema = config.attributes.get("schema") or context.get_x_argument(as_dictionary=True).get("schema")
if not schema:
    raise SystemExit("name the deployment schema: -x schema=<name>")
if not context.is_offline_mode():
    raise SystemExit("driftline migrations render SQL only: add --sql (driftline init-db applies them)")
config.attributes["schema"] = schema

context.configure(
    dialect_name="postgresql",
    dialect_opts={"paramstyle": "named"},  # statements are emitted as written: no %% doubling
    literal_binds=True,
    output_buffer=config.output_buffer,
    version_table=VERSION_TABLE,
    version_table_schema=schema,  # each deployment schema records its own revision
    transactional_ddl=False,  # the caller owns the transaction (no BEGIN/COMMIT in the output)
)
context.run_migrations()
