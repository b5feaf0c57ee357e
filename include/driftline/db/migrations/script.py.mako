"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
"""

from driftline.db.schema import execute_in_revision as execute

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    execute(
        # "ALTER TABLE {s}.<table> ADD COLUMN <name> <type>",
    )


def downgrade() -> None:
    raise NotImplementedError("driftline schemas are upgraded only; restore a backup to go back")
