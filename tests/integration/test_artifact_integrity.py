"""Every artifact scoring trusts is checked against a hash in the registry before use, and any
failure falls back (or fails as a clear BadModel) with a run row and an alert; nothing is published
from an unverified artifact, and a native object that could abort the process is never loaded.

Real Postgres, real LightGBM artifacts and lleaves objects. The abort case runs score_interval in a
subprocess: before the registry held the object's hash, it killed the process with SIGABRT.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftline.batch import score_interval
from driftline.config import load_config
from driftline.errors import BadModel
from driftline.scoring.compiled import cache_dir
from tests.helpers import fetch, write_text
from tests.integration.scenarios import LATER, add_second_champion, alerts, artifact, clean_rows, frame_csv, variant

REPO = Path(__file__).resolve().parents[2]


def corrupt(path: Path, how: str, other_version_file: Path) -> None:
    """Damage one artifact file in place, the ways a disk, a crash or a careless copy do."""
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(os.urandom(max(len(data), 1)))
    elif how == "bad json":
        path.write_bytes(b'{"sha256": "' + data[:40])
    elif how == "json list":
        path.write_bytes(b"[1, 2, 3]\n")
    elif how == "not utf-8":
        path.write_bytes(b"\xff\xfe" + data)
    elif how == "other version's file":
        shutil.copyfile(other_version_file, path)
    elif how == "missing":
        path.unlink()
    elif how == "folder":
        path.unlink()
        path.mkdir()
    elif how == "fifo":
        path.unlink()
        os.mkfifo(path)
    else:
        raise AssertionError(how)
    # What an earlier version kept beside a file: rewritten to match, it must change nothing.
    if path.is_file():
        path.with_name(path.name + ".sha256").write_text(hashlib.sha256(path.read_bytes()).hexdigest())


def restore(path: Path, data: bytes) -> None:
    if path.is_dir() and not path.is_symlink():
        path.rmdir()
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.write_bytes(data)
    path.with_name(path.name + ".sha256").unlink(missing_ok=True)


HOW = [
    "truncate",
    "empty",
    "garbage",
    "bad json",
    "json list",
    "not utf-8",
    "other version's file",
    "missing",
    "folder",
    "fifo",
]


@pytest.fixture(scope="module")
def two_champions(project) -> Path:
    """v2 champion, v1 previous, an input for LATER."""
    path = variant(project)
    add_second_champion(path)
    write_text(Path(load_config(path).input_location(*LATER)), frame_csv(clean_rows(LATER[0], rows=300)))
    return path


@settings(max_examples=14, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(file=st.sampled_from(["model.txt", "manifest.json"]), how=st.sampled_from(HOW))
def test_a_corrupt_champion_artifact_falls_back_with_a_run_row_and_an_alert(two_champions, file, how):
    path = two_champions
    target = artifact(path, 2).with_name(file)
    original = target.read_bytes()
    alerts_before = len(alerts(path, "fallback"))
    corrupt(target, how, artifact(path, 1).with_name(file))
    try:
        summary = score_interval(str(path), *LATER, run_id=f"corrupt-{file}-{how}")
    finally:
        restore(target, original)

    assert (summary["model_version"], summary["requested_version"], summary["fallback"]) == (1, 2, True)
    assert "model version 2" in summary["fallback_reason"] and "fell back to v1" in summary["fallback_reason"]
    assert len(alerts(path, "fallback")) == alerts_before + 1
    [(status, version, fallback)] = fetch(
        path,
        "SELECT status, model_version, fallback FROM {s}.scoring_runs WHERE run_id = %s",
        (f"corrupt-{file}-{how}",),
    )
    assert (status, version, fallback) == ("succeeded", 1, True)
    # Nothing published from the unverified artifact: the interval's rows name v1 only.
    assert fetch(path, "SELECT DISTINCT model_version FROM {s}.predictions WHERE interval_start = %s", (LATER[0],)) == [
        (1,)
    ]


@pytest.mark.parametrize("how", ["bad json", "json list", "fifo"])
def test_without_fallback_a_corrupt_manifest_is_a_clear_bad_model_with_a_failed_run_row(project, how):
    path = variant(project, fallback="false")
    write_text(Path(load_config(path).input_location(*LATER)), frame_csv(clean_rows(LATER[0], rows=100)))
    target = artifact(path, 1).with_name("manifest.json")
    corrupt(target, how, target)

    with pytest.raises(BadModel, match=r"manifest .*manifest\.json is .*no fallback because safeguards.fallback"):
        score_interval(str(path), *LATER, run_id="no-fallback")
    assert fetch(path, "SELECT status, published FROM {s}.run_health") == [("failed", False)]
    assert fetch(path, "SELECT count(*) FROM {s}.predictions") == [(0,)]


SCORE = """
import sys
from datetime import datetime
from driftline.batch import score_interval
summary = score_interval(sys.argv[1], datetime.fromisoformat(sys.argv[2]), datetime.fromisoformat(sys.argv[3]), sys.argv[4])
print(summary["scoring_engine"])
"""


def score_in_subprocess(path: Path, run_id: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SCORE, str(path), LATER[0].isoformat(), LATER[1].isoformat(), run_id],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "include"), str(REPO)])},
    )


@pytest.mark.parametrize("how", ["garbage", "truncate"])
def test_a_replaced_compiled_object_with_a_matching_sidecar_never_aborts_the_run(project, how):
    """The object is loaded by LLVM, which aborts the process on a bad one: verified against the
    registry (the sidecar an attacker rewrote is ignored), refused, compiled again and alerted."""
    path = variant(project, engine='"compiled"')
    write_text(Path(load_config(path).input_location(*LATER)), frame_csv(clean_rows(LATER[0], rows=100)))
    first = score_in_subprocess(path, "build-cache")
    assert first.returncode == 0, first.stderr[-2000:]
    sha = fetch(path, "SELECT sha256 FROM {s}.model_versions WHERE version = 1")[0][0]
    [object_file] = [p for p in (cache_dir() / "compiled").glob(f"{sha}*") if p.suffix == ".o"]
    corrupt(object_file, how, object_file)

    alerted = len(alerts(path, "untrusted_artifact"))
    second = score_in_subprocess(path, "after-tamper")

    assert second.returncode == 0, f"exit {second.returncode}: {second.stderr[-2000:]}"  # -6 is SIGABRT
    assert second.stdout.strip().splitlines()[-1] == "compiled"
    assert fetch(path, "SELECT status FROM {s}.scoring_runs WHERE run_id = 'after-tamper'") == [("succeeded",)]
    [(message, numbers, severity)] = alerts(path, "untrusted_artifact")[-1:]
    assert len(alerts(path, "untrusted_artifact")) == alerted + 1
    assert severity == "warning" and numbers == {"model_version": 1}
    assert object_file.name in message and "registry" in message
    [(recorded,)] = fetch(
        path, "SELECT object_sha256 FROM {s}.compiled_objects WHERE cache_key = %s", (object_file.name,)
    )
    assert hashlib.sha256(object_file.read_bytes()).hexdigest() == recorded
