"""The sha256 of every compiled-model object (scoring/compiled.py), recorded when it is built and
checked before the object is handed to LLVM: a hash beside the cache file can be rewritten by
whoever rewrites the file, a row here cannot.

Idempotent although it need not be (no deployment predates it): the migration tests replay every
revision over a finished schema.

Revision ID: 0006
Revises: 0005
"""

from driftline.db.schema import execute_in_revision as execute

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute(
        # cache_key: the cache file's name (model sha256, lleaves/llvmlite versions, block size, host CPU).
        """CREATE TABLE IF NOT EXISTS {s}.compiled_objects (
                cache_key      text PRIMARY KEY,
                model_sha256   text NOT NULL,
                object_sha256  text NOT NULL,
                compiled_at    timestamptz NOT NULL DEFAULT now())""",
    )


def downgrade() -> None:
    raise NotImplementedError("driftline schemas are upgraded only; restore a backup to go back")
