"""The UI's one number format (ui/numbers.py), the page conclusions (ui/conclusions.py) and chart titles
that fit: pure functions, no database."""

from __future__ import annotations

import re
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from driftline.airflow.ui import numbers
from driftline.airflow.ui.charts import TITLE_CHAR_PX, TITLE_X, Chart, fitted_title, svg
from driftline.airflow.ui.conclusions import evaluation_states, waiting_candidates

SCIENTIFIC = re.compile(r"\d[eE][+-]?\d")


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_counts_have_thousands_separators_and_round_trip(n):
    text = numbers.number(n)
    assert int(text.replace(",", "")) == n
    assert re.fullmatch(r"-?\d{1,3}(,\d{3})*", text)


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12))
def test_metrics_have_fixed_decimals_and_never_scientific_notation(x):
    for value in (x, Decimal(repr(x))):
        text = numbers.number(value)
        assert not SCIENTIFIC.search(text)
        if "<" in text:  # too small to show: says so rather than 0.0000
            assert 0 < abs(x) < 10**-numbers.DECIMALS
        else:
            assert re.fullmatch(r"-?\d{1,3}(,\d{3})*\.\d{4}", text)
            assert abs(float(text.replace(",", "")) - x) <= 0.5 * 10**-numbers.DECIMALS + abs(x) * 1e-12


def test_the_examples_of_the_issue_read_alike():
    assert numbers.number(10860.0) == "10,860.0000" and numbers.number(9855) == "9,855"
    assert numbers.number(1e-12) == "<0.0001" and numbers.number(None) == "-" and numbers.percent(0.4567) == "45.7%"


@given(st.text(min_size=1, max_size=200), st.integers(min_value=120, max_value=1000))
def test_chart_titles_fit_the_chart_and_keep_the_whole_title_on_hover(title, width):
    chart = Chart(title, ["a", "b"], width=width)
    shown = fitted_title(chart)
    assert len(shown) * TITLE_CHAR_PX <= width - 2 * TITLE_X
    words = " ".join(title.split())
    assert shown == words or (shown.endswith("…") and words.startswith(shown[:-1]))


def test_a_long_segment_title_is_cut_with_its_full_text_as_the_hover_title():
    title = "merchant_category = " + "groceries and household supplies " * 3
    markup = svg(Chart(title, ["a", "b"], width=320, height=170))
    shown = re.search(r'class="chart-title"[^>]*><title>([^<]*)</title>([^<]*)</text>', markup)
    assert shown.group(1) == title and shown.group(2).endswith("…") and len(shown.group(2)) < len(title)


def evaluation(eid, version, passed):
    return {"evaluation_id": eid, "candidate_version": version, "passed": passed, "run_id": f"r{eid}"}


def test_a_passed_candidate_without_a_decision_is_waiting_never_just_passed():
    versions = [
        {"version": 1, "status": "archived"},
        {"version": 2, "status": "champion"},
        {"version": 3, "status": "rejected"},
        {"version": 4, "status": "candidate"},
        {"version": 5, "status": "candidate"},
    ]
    evaluations = [evaluation(6, 5, False), evaluation(5, 4, True), evaluation(4, 4, True)]
    evaluations += [evaluation(3, 3, True), evaluation(2, 2, True), evaluation(1, 1, True)]
    states = evaluation_states(versions, evaluations, "manual")
    assert [s["state"] for s in states] == [
        "failed",
        "passed, waiting for approval",
        "passed, superseded",  # an older evaluation of the same candidate
        "passed, then rejected (see the promotion history)",
        "passed, promoted",
        "passed, promoted",
    ]
    assert [e["candidate_version"] for e in waiting_candidates(states)] == [4]
    assert evaluation_states(versions, evaluations, "auto")[1]["state"] == "passed, waiting for the promotion step"


FEATURES = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["ks", "psi", "chisquare", "wasserstein", "jensenshannon"]),
        "statistic": st.none() | st.floats(min_value=0, max_value=10),
        "threshold": st.floats(min_value=0, max_value=1),
        "effect_size": st.none() | st.floats(min_value=0, max_value=5),
        "drifted": st.booleans(),
        "counted": st.booleans(),
    }
)


@given(FEATURES, st.none() | st.floats(min_value=0, max_value=1))
def test_a_pages_why_is_the_reports_why_in_the_pages_number_format(feature, floor):
    from driftline.airflow.ui.conclusions import feature_why
    from driftline.drift.summary import statistic_kind

    flagged_by = (
        f"{feature['method']} {statistic_kind(feature['method'])} {numbers.metric(feature['statistic'])} "
        f"vs threshold {numbers.metric(feature['threshold'])}"
    )
    effect, bound = numbers.metric(feature["effect_size"]), numbers.metric(floor)
    if not feature["drifted"]:
        expected = f"not flagged ({flagged_by})"
    elif floor is None:
        expected = f"flagged ({flagged_by})"
    elif feature["counted"]:
        expected = f"flagged ({flagged_by}) and effect size {effect} >= floor {bound}"
    else:
        expected = f"flagged ({flagged_by}), but effect size {effect} < floor {bound}: not counted"
    assert feature_why(feature, floor) == expected
