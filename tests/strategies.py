"""Hypothesis strategies shared by unit and integration tests: messy CSV inputs and null-like tokens."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

NULL_LIKE = ["NA", "N/A", "null", "NULL", "NaN", "nan", "#N/A", "None", "-"]


def _private_hypothesis_home() -> None:
    """Hypothesis caches constants under ./.hypothesis: keep them out of the repository."""
    import atexit
    import shutil
    import tempfile

    home = tempfile.mkdtemp(prefix="driftline-hypothesis-")
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    set_hypothesis_home_dir(home)


_private_hypothesis_home()

_TEXT = st.text(alphabet=st.sampled_from(list("ab7 ,\"'é-_N/A#")), min_size=0, max_size=6)
_CATEGORY = st.one_of(st.sampled_from([*NULL_LIKE, "", "grocery", "café", "a,b", 'say "hi"', " pad "]), _TEXT)
_AMOUNT = st.sampled_from(["12.5", "", " ", "NA", "nan", "1e3", "-0", "abc", " 7 "])
_CLEAN_AMOUNT = st.sampled_from(["12.5", "", " ", "1e3", "-0", " 7 "])  # never "holds text" (a table-level error)
_KINDS = ["good"] * 5 + ["blank", "open_quote", "extra_field", "missing_field", "huge"]


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"') or text.startswith(" ") else text


@st.composite
def messy_csv(draw):
    encoding = draw(st.sampled_from(["utf-8", "latin-1"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    null_values = tuple(draw(st.lists(st.sampled_from(NULL_LIKE), max_size=3, unique=True)))
    # Small chunks (clean numbers) or one chunk led by a clean record, so no chunk's numeric column
    # is all text: that is a table-level InputError, not what this test is about.
    chunk_rows = draw(st.sampled_from([7, 100_000]))
    amounts = _CLEAN_AMOUNT if chunk_rows == 7 else _AMOUNT
    records = [("good", "first,2026-11-01T10:00:00Z,12.5,100,1,2.5,10,grocery,online", "first", "grocery")]
    for index in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(_KINDS))
        if kind == "blank":
            records.append((kind, "", None, None))
            continue
        key = draw(_TEXT) + f"#{index}"
        category = draw(_CATEGORY)
        fields = [
            _quote(key),
            "2026-11-01T10:00:00Z",
            draw(amounts),
            "100",
            "1",
            "2.5",
            "10",
            _quote(category),
            "online",
        ]
        if kind == "open_quote":
            # Not on an empty field: `",` closes a quote opened lines before into a legal multi-line record
            # (RFC 4180, the domain of rfc_csv below), which a person may count either way.
            position = draw(st.sampled_from([i for i, f in enumerate(fields) if f and not f.startswith('"')]))
            fields[position] = '"' + fields[position]
        elif kind == "extra_field":
            fields.insert(draw(st.integers(1, len(fields))), draw(amounts))
        elif kind == "missing_field":
            del fields[draw(st.integers(1, len(fields) - 1))]
        elif kind == "huge":
            fields[7] = "x" * 300
        records.append((kind, ",".join(fields), key, category))
    return encoding, newline, null_values, chunk_rows, records


_SPAN_TEXT = st.lists(st.sampled_from([*'ab7 ,"é\n', "\r\n"]), max_size=8).map("".join)


@st.composite
def rfc_csv(draw):
    """A CSV file of RFC 4180 records (keys and categories with line breaks, CRLF, quotes, delimiters),
    some broken whole: (newline, chunk_rows, max_record_bytes, records); a record is (kind, text, key,
    category) with kind good | extra_field (a multi-line record with a field too many) | open (a quote
    that never closes, on the file's last record)."""
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    records = []
    for index in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["good"] * 6 + ["extra_field"]))
        key = draw(_SPAN_TEXT) + f"#{index}"
        category = draw(_SPAN_TEXT)
        fields = ['"' + key.replace('"', '""') + '"', "2026-11-01T10:00:00Z", "12.5", "100", "1", "2.5", "10"]
        fields += ['"' + category.replace('"', '""') + '"', "online"]
        if kind == "extra_field":
            fields.insert(draw(st.integers(1, len(fields))), "7")
        records.append((kind, ",".join(fields), key, category))
    if draw(st.booleans()):
        records.append(("open", 'k,2026-11-01T10:00:00Z,"12.5,100,1', None, None))
    return newline, draw(st.sampled_from([3, 100_000])), draw(st.sampled_from([160, 256, 1 << 20])), records
