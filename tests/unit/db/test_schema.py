"""The head revision, known without importing Alembic (it cost 0.3 CPU-s on every scoring run)."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.db import schema


def test_the_head_read_from_the_files_is_alembics():
    assert schema.head_revision.__wrapped__() == schema._alembic_head()


def test_the_head_revision_imports_no_alembic():
    code = (
        "import sys; from driftline.db.schema import head_revision; head = head_revision(); "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'alembic'], 'alembic imported'; print(head)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == schema.head_revision()


@st.composite
def histories(draw):
    """A linear history of revision ids, optionally with a branch left open (two heads)."""
    ids = draw(st.lists(st.text("0123456789abcdef", min_size=4, max_size=8), min_size=1, max_size=8, unique=True))
    parents = [None, *ids[:-1]]
    branch = draw(st.booleans()) and len(ids) > 2
    if branch:  # the last revision revises an earlier one: two heads, Alembic decides
        parents[-1] = ids[draw(st.integers(0, len(ids) - 3))]
    return list(zip(ids, parents))


@settings(max_examples=30, deadline=None)
@given(histories(), st.randoms())
def test_the_head_is_the_revision_no_other_revises(tmp_path_factory, history, random):
    folder = tmp_path_factory.mktemp("migrations")
    (folder / "versions").mkdir()
    shuffled = list(history)
    random.shuffle(shuffled)  # file names do not order revisions
    for number, (revision, parent) in enumerate(shuffled):
        (folder / "versions" / f"{number:03d}_x.py").write_text(
            f'"""Revision ID: {revision}"""\n\nrevision = {revision!r}\ndown_revision = {parent!r}\n'
        )
    heads = {r for r, _ in history} - {p for _, p in history}
    original = schema.MIGRATIONS
    schema.MIGRATIONS = folder
    try:
        if len(heads) == 1:
            assert schema.head_revision.__wrapped__() == heads.pop()
        else:
            asked = []
            real = schema._alembic_head
            schema._alembic_head = lambda: asked.append(1) or "alembic"
            try:
                assert schema.head_revision.__wrapped__() == "alembic"  # several heads: Alembic's own error
            finally:
                schema._alembic_head = real
            assert asked
    finally:
        schema.MIGRATIONS = original
