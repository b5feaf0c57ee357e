"""The one number format of the UI pages: counts with thousands separators, ratios and metrics with
fixed decimals. Templates (the `number`, `count`, `percent` filters) and charts both use it, so the
same value never reads 1.086e+04 on one page and 10,860 on another."""

from __future__ import annotations

import math
from decimal import Decimal
from numbers import Integral, Real

DECIMALS = 4  # ratios, p-values, distances, metrics, gains
MISSING = "-"


def count(value) -> str:
    """A count of things (rows, features): 10,860."""
    if value is None:
        return MISSING
    return f"{int(value):,}"


def metric(value, decimals: int = DECIMALS) -> str:
    """A ratio or metric with `decimals` fixed decimals (12,345.6789, 0.0420); a non-zero value too
    small to show reads "<0.0001" rather than a misleading 0.0000, and never in scientific notation."""
    if value is None:
        return MISSING
    x = float(value)
    if math.isnan(x):
        return MISSING
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    smallest = 10.0**-decimals
    if x != 0 and abs(x) < smallest / 2:
        return f"{'-' if x < 0 else ''}<{smallest:.{decimals}f}"
    return f"{x:,.{decimals}f}"


def percent(share, decimals: int = 1) -> str:
    """A share in 0..1 as a percentage: 0.4567 -> 45.7%."""
    if share is None:
        return MISSING
    return f"{metric(100 * float(share), decimals)}%"


def number(value) -> str:
    """Any stored number: an integer as a count, anything else as a metric (bools and text unchanged)."""
    if value is None:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, Real | Decimal):
        return str(value)
    if isinstance(value, Integral):
        return count(value)
    return metric(value)
