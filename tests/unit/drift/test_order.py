"""Drift decisions are a function of the data: any monitoring order triggers the retrains of data order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.config import DriftPolicy
from driftline.drift.order import Interval, plan

DAY0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def policy(breaches: int, window: int, cooldown_days: float) -> DriftPolicy:
    return DriftPolicy(
        drifted_share=0.3,
        prediction_drift=0.1,
        effect_size_floor=0.1,
        breaches=breaches,
        window=window,
        cooldown_hours=cooldown_days * 24,
    )


def in_order(rules: DriftPolicy, flags: list[bool]) -> set[datetime]:
    """The reference: monitor one interval a day, in data order, as a scheduler does."""
    triggered, last = set(), None
    for day, breach in enumerate(flags):
        end = DAY0 + timedelta(days=day + 1)
        window = flags[max(0, day - rules.window + 1) : day + 1]
        cooled = last is None or end - last >= timedelta(hours=rules.cooldown_hours)
        if breach and sum(window) >= rules.breaches and cooled:
            triggered.add(end)
            last = end
    return triggered


@st.composite
def backfills(draw):
    flags = draw(st.lists(st.booleans(), min_size=1, max_size=10))
    window = draw(st.integers(1, 4))
    rules = policy(draw(st.integers(1, window)), window, draw(st.sampled_from([0, 0.5, 1, 2, 3.5])))
    order = draw(st.permutations(range(len(flags))))
    return rules, flags, order


@settings(max_examples=400, deadline=None)
@given(backfills())
def test_any_monitoring_order_triggers_the_retrains_of_data_order(case):
    rules, flags, order = case
    ends = [DAY0 + timedelta(days=day + 1) for day in range(len(flags))]
    monitored: dict[datetime, bool] = {}
    issued: list[datetime] = []
    for day in order:  # every interval is known (score_batch started on it) before any is monitored
        monitored[ends[day]] = flags[day]
        planned = plan(rules, [Interval(end, monitored.get(end)) for end in ends])
        # A retrain is triggered once per interval: when its re-evaluated decision first says so.
        issued += [end for end, p in planned.items() if p.trigger and end not in issued]
        assert {end for end in issued} <= {end for end, p in planned.items() if p.trigger}  # never taken back
    assert sorted(issued) == sorted(in_order(rules, flags))


def test_the_issue_backfill_triggers_when_monitored_out_of_order():
    """11-01 .. 11-04 all breach, monitored 11-01, 11-03, 11-02, 11-04: 2 of 3 persists at 11-02."""
    rules = policy(2, 3, 1.5)
    ends = [DAY0 + timedelta(days=day + 1) for day in range(4)]
    states = {end: None for end in ends}
    triggered = set()
    for day in (0, 2, 1, 3):
        states[ends[day]] = True
        planned = plan(rules, [Interval(end, flag) for end, flag in states.items()])
        triggered |= {end for end, p in planned.items() if p.trigger}
        if day == 2:  # 11-03 waits for 11-02 rather than deciding on 1 of 3
            assert planned[ends[2]].waiting_for == (ends[1],) and not planned[ends[2]].trigger
    assert triggered == {ends[1], ends[3]}  # 11-03 is in 11-02's cooldown, 11-04 is not


def test_cooldown_counts_in_data_time_and_a_run_that_retrains_nothing_is_no_anchor():
    rules = policy(1, 1, 30)  # monthly data, a 30-day cooldown
    months = [datetime(2026, month, 1, tzinfo=timezone.utc) for month in (2, 3, 4)]
    intervals = [Interval(end, True) for end in months]
    # Monitored in one afternoon: February's retrain covers data to 02-01; March is 28 days on, April 59.
    assert [p.trigger for p in plan(rules, intervals).values()] == [True, False, True]
    assert plan(rules, intervals)[months[1]].last_retrain == months[0]
    assert [p.trigger for p in plan(rules, intervals, anchor=False).values()] == [True, True, True]
    promoted = [datetime(2026, 1, 20, tzinfo=timezone.utc)]  # a retrain on data to 01-20
    assert [p.trigger for p in plan(rules, intervals, promoted).values()] == [
        False,
        True,
        True,
    ]  # April: 31 days after March


def test_a_recorded_no_retrain_trigger_stays_no_anchor_when_later_runs_retrain():
    """`driftline monitor --no-retrain` then `driftline monitor` on one database: February's recorded
    trigger started nothing, so March (28 days on) is not in its cooldown; a recorded trigger that
    started a retrain anchors the cooldown even when monitored under --no-retrain."""
    rules = policy(1, 1, 30)
    months = [datetime(2026, month, 1, tzinfo=timezone.utc) for month in (2, 3, 4)]
    intervals = [Interval(end, True) for end in months]
    not_started = plan(rules, intervals, recorded={months[0]: False})
    assert [p.trigger for p in not_started.values()] == [True, True, True]
    assert not_started[months[1]].last_retrain is None
    assert not_started[months[2]].last_retrain == months[1]  # March's retrain ran: April is 31 days on
    started = plan(rules, intervals, anchor=False, recorded={months[0]: True})
    assert [p.trigger for p in started.values()] == [True, False, True]
    assert started[months[1]].last_retrain == months[0]


def issue(rules: DriftPolicy, known: list[datetime], monitored: dict, issued: dict, busy: bool) -> None:
    """One monitor_drift run: plan over what is known and recorded, record the planned triggers not
    recorded yet, unless the retrain DAG is busy (then they are held, recorded by a later run)."""
    planned = plan(rules, [Interval(end, monitored.get(end)) for end in known], recorded=issued)
    for end, p in planned.items():
        if end in issued:
            continue
        assert not (p.trigger and p.waiting_for)
        if p.trigger and not busy:
            issued[end] = True


@st.composite
def busy_backfills(draw):
    rules, flags, order = draw(backfills())
    return rules, flags, order, draw(st.lists(st.booleans(), min_size=len(flags), max_size=len(flags)))


@settings(max_examples=200, deadline=None)
@given(busy_backfills())
def test_triggers_held_while_the_retrain_dag_is_busy_are_the_triggers_of_data_order(case):
    """A trigger the retrain DAG cannot take is held and recorded by a later run: once it can, the
    recorded triggers are those of data order, whatever the order and the busy runs."""
    rules, flags, order, busy = case
    ends = [DAY0 + timedelta(days=day + 1) for day in range(len(flags))]
    monitored: dict[datetime, bool] = {}
    issued: dict[datetime, bool] = {}
    for day, busy_now in zip(order, busy):
        monitored[ends[day]] = flags[day]
        issue(rules, ends, monitored, issued, busy_now)
    issue(rules, ends, monitored, issued, busy=False)  # the next run, once the DAG is free
    assert sorted(issued) == sorted(in_order(rules, flags))


@st.composite
def late_backfills(draw):
    """Intervals become known (score_batch starts on them) and are monitored in any interleaving: the
    first event of a day makes it known, the second monitors it."""
    rules, flags, _ = draw(backfills())
    days = draw(st.permutations([day for day in range(len(flags)) for _ in range(2)]))
    busy = draw(st.lists(st.booleans(), min_size=len(days), max_size=len(days)))
    return rules, flags, days, busy


@settings(max_examples=200, deadline=None)
@given(late_backfills())
def test_intervals_known_late_never_put_two_retrains_within_one_cooldown(case):
    """A recorded trigger is never taken back, so an interval known after a later one triggered can
    change what triggers; but no two retrains are closer than the cooldown, each trigger is a
    persistent breach, and intervals known in data order give exactly the triggers of data order."""
    rules, flags, days, busy = case
    ends = [DAY0 + timedelta(days=day + 1) for day in range(len(flags))]
    known: list[datetime] = []
    monitored: dict[datetime, bool] = {}
    issued: dict[datetime, bool] = {}
    for day, busy_now in zip(days, busy):
        if ends[day] in known:
            monitored[ends[day]] = flags[day]
        else:
            known.append(ends[day])
        issue(rules, known, monitored, issued, busy_now)
    issue(rules, known, monitored, issued, busy=False)
    triggers = sorted(issued)
    cooldown = timedelta(hours=rules.cooldown_hours)
    assert all(b - a >= cooldown for a, b in zip(triggers, triggers[1:]))
    assert all(flags[ends.index(end)] for end in triggers)
    if known == sorted(known):
        assert triggers == sorted(in_order(rules, flags))


def test_an_earlier_interval_known_after_a_later_one_triggered_respects_its_cooldown():
    """B triggers and starts a retrain; A, 30 h earlier, becomes known and breaches later: the data-order
    answer (A triggers, B in its cooldown) can no longer be had, and two retrains 30 h apart are worse."""
    rules = policy(1, 1, 2)
    a, b = DAY0 + timedelta(days=1), DAY0 + timedelta(days=1, hours=30)
    assert plan(rules, [Interval(b, True)])[b].trigger
    late = plan(rules, [Interval(a, True), Interval(b, True)], recorded={b: True})
    assert not late[a].trigger and late[a].next_retrain == b
    # A trigger recorded under --no-retrain started nothing: it puts nothing in cooldown.
    assert plan(rules, [Interval(a, True), Interval(b, True)], recorded={b: False})[a].trigger


def test_a_candidate_waits_only_for_what_can_change_it():
    """An unmonitored interval in the window can only add breaches: it holds a trigger only when it is
    within the cooldown (it may trigger itself)."""
    rules = policy(1, 3, 0.5)
    ends = [DAY0 + timedelta(days=day + 1) for day in range(3)]
    planned = plan(rules, [Interval(ends[0], None), Interval(ends[1], None), Interval(ends[2], True)])
    assert planned[ends[2]].trigger and planned[ends[2]].waiting_for == ()
    held = plan(policy(1, 3, 1.5), [Interval(ends[0], None), Interval(ends[1], None), Interval(ends[2], True)])
    assert held[ends[2]].waiting_for == (ends[1],) and not held[ends[2]].trigger
