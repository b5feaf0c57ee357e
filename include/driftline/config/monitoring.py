"""[monitoring]: which categorical features are monitored per segment (drift.segments)."""

from __future__ import annotations

from pathlib import Path

from driftline.config.checks import expect
from driftline.config.model import ConfigError, Feature, MonitoringSettings

MAX_TOP_N = 1000  # segment values kept per feature; more is a 20 MB trends page, not monitoring


def monitoring_settings(path: Path, table: dict, features: tuple[Feature, ...]) -> MonitoringSettings:
    """[monitoring] is optional: segments name categorical features (top_n values each, plus "other")."""
    segments = expect(path, "monitoring.segments", table.get("segments", []), list)
    types = {f.name: f.type for f in features}
    for name in segments:
        if not isinstance(name, str) or name not in types:
            raise ConfigError(
                f"{path}: 'monitoring.segments' lists {name!r}, which is not a feature (features: {', '.join(types)})"
            )
        if types[name] != "categorical":
            raise ConfigError(
                f"{path}: 'monitoring.segments' lists {name!r}, a {types[name]} feature: segments must be categorical"
            )
    if len(set(segments)) != len(segments):
        raise ConfigError(f"{path}: 'monitoring.segments' lists a feature twice: {segments!r}")
    counts = {}
    for key in ("top_n", "min_segment_rows"):
        counts[key] = expect(path, f"monitoring.{key}", table.get(key, getattr(MonitoringSettings, key)), int)
        if isinstance(counts[key], bool) or counts[key] < 1:
            raise ConfigError(f"{path}: 'monitoring.{key}' must be a whole number >= 1, got {counts[key]!r}")
    if counts["top_n"] > MAX_TOP_N:
        raise ConfigError(
            f"{path}: 'monitoring.top_n' must be <= {MAX_TOP_N}, got {counts['top_n']}: every value is a row of "
            "segment_performance per interval and a line of the trends page"
        )
    return MonitoringSettings(segments=tuple(segments), **counts)
