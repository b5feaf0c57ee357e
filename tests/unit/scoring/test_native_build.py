"""The native objects' cache (scoring/native_build.py) is trusted only under the same checks as the
compiled models' cache (compiled.private_cache_folder): otherwise the object is built per process."""

from __future__ import annotations

import logging

import pytest

from driftline.scoring import native_build


@pytest.mark.parametrize("unsafe", ["root world-writable", "a symlink", "world-writable"])
def test_an_unsafe_cache_is_refused_so_the_library_is_built_per_process(tmp_path, monkeypatch, caplog, unsafe):
    root = tmp_path / "cache"
    root.mkdir(mode=0o700)
    monkeypatch.setenv("DRIFTLINE_CACHE_DIR", str(root))
    folder = root / "native"
    if unsafe == "root world-writable":
        root.chmod(0o777)  # anyone could swap <cache>/native for a folder of their own
    elif unsafe == "a symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        folder.symlink_to(tmp_path / "elsewhere")
    else:
        folder.mkdir(mode=0o700)
        folder.chmod(0o777)
    with caplog.at_level(logging.WARNING, logger="driftline.scoring"):
        assert native_build._private_directory() is None  # load() then builds in a temporary directory
    assert "refusing the native-code cache" in caplog.text and "DRIFTLINE_CACHE_DIR" in caplog.text


def test_a_private_cache_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFTLINE_CACHE_DIR", str(tmp_path / "cache"))
    assert native_build._private_directory() == tmp_path / "cache" / "native"
    assert (tmp_path / "cache" / "native").stat().st_mode & 0o777 == 0o700
