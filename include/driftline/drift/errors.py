"""The errors monitor_drift raises on purpose (branches of driftline.errors)."""

from __future__ import annotations

from driftline.errors import BadInput, NotReady


class IntervalNotScoredError(NotReady):
    """The interval has no published predictions yet (score_batch has not finished): worth a retry."""


class DriftError(BadInput):
    """Monitoring cannot run as configured; the message says what to fix."""
