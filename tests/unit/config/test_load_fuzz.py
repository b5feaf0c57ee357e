"""Config files fuzzed (bytes and values): each one either loads into a config Airflow can use, or is
one ConfigError naming the file and the key; and the other datasets of the folder always load."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from driftline.config import ConfigError, load_config, load_datasets
from tests.helpers import config_copy, edit_config, write_config

# database=None and no explain phase: nothing (example database, patches) written into the repository.
FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
KEY_OF = {
    "timezone": "schedule.timezone",
    "cron": "schedule.cron",
    "start_date": "schedule.start_date",
    "schema": "database.schema",
    "top_n": "monitoring.top_n",
    "scoring_deadline_hours": "alerts.scoring_deadline_hours",
    "approval_timeout_hours": "retraining.approval_timeout_hours",
    "cooldown_hours": "drift.trigger.cooldown_hours",
    "training_days": "retraining.training_days",
}


def two_datasets(root):
    """config/cards.toml (good) and config/loans.toml (to be broken), each with its own names."""
    paths = []
    for name in ("cards", "loans"):
        own = {"name": f'"{name}"', "schema": f'"dl_{name}"', "registry_dir": f'"models/{name}"'}
        paths.append(config_copy(root, name=f"{name}.toml", keys={**own, "reports_dir": f'"reports/{name}"'}))
    return paths


def usable_by_airflow(config) -> None:
    """What Airflow does with the schedule: serialize and deserialize the timetable, plan the first run
    from start_date, and add the deadline and approval durations to it."""
    from airflow.sdk import CronDataIntervalTimetable
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    timetable = coerce_to_core_timetable(CronDataIntervalTimetable(config.cron, timezone=config.timezone))
    timetable.validate()
    info = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=config.start_date, latest=None, catchup=True),
    )
    assert info is not None
    end = info.data_interval.end
    for hours in (config.alerts.scoring_deadline_hours or 0, config.retraining.approval_timeout_hours):
        end + timedelta(hours=hours) + (end - info.data_interval.start)


def check(root, paths) -> None:
    """loans.toml loads into a usable config or is one ConfigError naming it; cards.toml always loads."""
    cards, loans = paths
    try:
        usable_by_airflow(load_config(loans))
    except ConfigError as exc:
        assert str(exc).startswith(f"{loans}: ") or str(exc).startswith(f"{loans.resolve()}: "), str(exc)
    datasets = load_datasets(paths)
    assert "cards" in datasets.names()
    assert len(datasets.loaded) + len(datasets.broken) == 2


@pytest.fixture
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(data=st.data(), blob=st.binary(min_size=1, max_size=8))
def test_random_bytes_anywhere_never_escape_as_another_error(folder, data, blob):
    cards, loans = two_datasets(folder)
    text = loans.read_bytes()
    at = data.draw(st.integers(0, len(text)))
    loans.write_bytes(text[:at] + blob + text[at:])
    check(folder, (cards, loans))


TIMEZONES = st.one_of(
    st.sampled_from(["UTC", "Europe/Berlin", "Mars/Olympus", "", "../etc/passwd", "utc", "EST"]), st.text(max_size=20)
)
CRON_FIELD = st.one_of(
    st.sampled_from(["*", "0", "31", "60", "24", "*/0", "*/5", "1-5", "5-1", "MON", "L", "#", "8"]),
    st.integers(-5, 100).map(str),
)
CRONS = st.lists(CRON_FIELD, min_size=4, max_size=6).map(" ".join)
START_DATES = st.one_of(st.dates().map(lambda d: d.isoformat()), st.datetimes().map(lambda d: d.isoformat()))


def toml_value(value) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    return (
        repr(value)
        if not isinstance(value, float)
        else {"inf": "inf", "-inf": "-inf", "nan": "nan"}.get(str(value), repr(value))
    )


@FUZZ
@given(
    key=st.sampled_from(sorted(KEY_OF)),
    value=st.one_of(
        TIMEZONES,
        CRONS,
        START_DATES,
        st.integers(-10, 10**25),
        st.floats(),
        st.sampled_from(
            [
                "public",
                "information_schema",
                "pg_catalog",
                "pg_temp_3",
                "pg_toast",
                "select",
                "user",
                "dl_ok",
                "Bad-Name",
                "a" * 64,
            ]
        ),
    ),
)
def test_random_values_for_keys_are_usable_or_one_error_naming_the_key(folder, key, value):
    cards, loans = two_datasets(folder)
    write_config(folder, edit_config(loans.read_text(), keys={key: toml_value(value)}), name=loans.name)
    try:
        usable_by_airflow(load_config(loans))
    except ConfigError as exc:
        assert str(exc).startswith(f"{loans}: ") and KEY_OF[key] in str(exc), str(exc)
    assert "cards" in load_datasets([cards, loans]).names()


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("timezone", '"Mars/Olympus"', "'schedule.timezone' is not an IANA time zone"),
        ("cron", '"0 0 31 2 *"', "'schedule.cron'"),
        ("cron", '"0 0 * * 8"', "'schedule.cron'"),
        ("start_date", "9999-12-31", "'schedule.start_date' must be in the years 1970-2199"),
        ("schema", '"public"', "PostgreSQL's own"),
        ("schema", '"information_schema"', "PostgreSQL's own"),
        ("schema", '"pg_temp_1"', "PostgreSQL's own"),
        ("schema", '"pg_toast"', "PostgreSQL's own"),
        ("schema", '"select"', "reserved SQL keyword"),
        ("top_n", "10000", "'monitoring.top_n' must be <= 1000"),
        ("scoring_deadline_hours", "1e300", "'alerts.scoring_deadline_hours'"),
        ("threshold", "nan", "'model.threshold' must be a finite number"),
    ],
)
def test_each_class_of_bad_value_is_refused_at_load(tmp_path, key, value, message):
    _, loans = two_datasets(tmp_path)
    write_config(tmp_path, edit_config(loans.read_text(), keys={key: value}), name=loans.name)
    with pytest.raises(ConfigError, match="^" + str(loans).replace("\\", "\\\\")) as raised:
        load_config(loans)
    assert message in str(raised.value)


def test_a_non_utf8_byte_names_the_file_and_line(tmp_path):
    _, loans = two_datasets(tmp_path)
    loans.write_bytes(b"# caf\xe9\n" + loans.read_bytes())
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 5, line 1\)"):
        load_config(loans)


def test_reserved_keywords_cover_sqlalchemys_postgresql_list():
    from sqlalchemy.dialects.postgresql.base import RESERVED_WORDS

    from driftline.config.names import RESERVED_KEYWORDS

    assert set(RESERVED_WORDS) <= RESERVED_KEYWORDS
