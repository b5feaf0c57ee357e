"""The config-copy helper refuses an edit that does not apply, so no test checks an unedited config."""

from __future__ import annotations

import pytest

from tests.helpers import ConfigEditError, edit_config

TEXT = '[a]\nx = 1\ny = "k"\n\n[a.b]\nx = 2\n\n[c]\nz = 3\n'


def test_each_kind_of_edit_applies_where_it_says():
    assert edit_config(TEXT, [('y = "k"', 'y = "m"')]) == TEXT.replace('y = "k"', 'y = "m"')
    assert edit_config(TEXT, keys={"z": "4"}).endswith("[c]\nz = 4\n")
    assert edit_config(TEXT, sections={"a.b": "x = 5\n"}) == TEXT.replace("[a.b]\nx = 2\n\n", "[a.b]\nx = 5\n")
    assert edit_config(TEXT, sections={"a": None}) == TEXT[TEXT.index("[a.b]") :]  # [a.b] is another table
    assert edit_config(TEXT, sections={"c": None}, append="w = 1\n") == TEXT[: TEXT.index("[c]")] + "w = 1\n"


@pytest.mark.parametrize(
    "edits, message",
    [
        ({"replace": [("q = 1", "q = 2")]}, "edit 'q = 1' matches nothing in the config"),
        ({"replace": [("x = ", "x = 9")]}, "edit 'x = ' matches 2 times in the config; quote more of the line"),
        ({"keys": {"q": "1"}}, "key 'q' is not a line of the config"),
        ({"keys": {"x": "9"}}, "key 'x' is on 2 lines of the config"),
        ({"sections": {"d": None}}, "section [d] is missing from the config"),
    ],
)
def test_an_edit_that_does_not_apply_raises(edits, message):
    with pytest.raises(ConfigEditError) as error:
        edit_config(TEXT, **edits)
    assert str(error.value) == message
