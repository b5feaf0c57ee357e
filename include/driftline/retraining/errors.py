"""The error retrain_model raises on purpose (a branch of driftline.errors)."""

from __future__ import annotations

from driftline.errors import BadInput


class RetrainingError(BadInput):
    """A retrain or rollback request that cannot proceed as asked; the message says why."""
