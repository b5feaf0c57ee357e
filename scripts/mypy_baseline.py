"""mypy against a baseline that only shrinks: mypy-baseline.txt holds, per file and error code, how many
errors that file may still have. CI fails when any count grows (or a new file/code appears).

    python scripts/mypy_baseline.py            # check (CI)
    python scripts/mypy_baseline.py --update   # rewrite the baseline after fixing errors; commit it
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "mypy-baseline.txt"
ERROR = re.compile(r"^(?P<file>[^:\n]+):\d+(?::\d+)?: error: .*?(?:\s+\[(?P<code>[a-z0-9-]+)\])?$")
HEADER = "# file:error-code count -- mypy errors allowed per file; only ever lower these (scripts/mypy_baseline.py)\n"


def run_mypy() -> tuple[Counter[str], list[str]]:
    """(errors per 'file:code', the error lines) of mypy as configured in pyproject.toml."""
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--no-pretty"], cwd=REPO, capture_output=True, text=True
    )
    if out.returncode not in (0, 1):  # 2: mypy itself failed (bad config, crash): no count to trust
        sys.exit(f"mypy failed to run (exit {out.returncode}):\n{out.stderr or out.stdout}")
    lines = [line for line in out.stdout.splitlines() if ERROR.match(line)]
    counts = Counter(f"{m['file']}:{m['code'] or 'no-code'}" for m in map(ERROR.match, lines) if m)
    return counts, lines


def read_baseline() -> Counter[str]:
    counts: Counter[str] = Counter()
    if BASELINE.exists():
        for line in BASELINE.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                key, count = line.rsplit(" ", 1)
                counts[key] = int(count)
    return counts


def main(argv: list[str]) -> int:
    counts, lines = run_mypy()
    if "--update" in argv:
        BASELINE.write_text(HEADER + "".join(f"{key} {counts[key]}\n" for key in sorted(counts)))
        print(f"{BASELINE.name}: {sum(counts.values())} errors in {len({k.split(':')[0] for k in counts})} files")
        return 0
    allowed = read_baseline()
    grown = sorted(key for key in counts if counts[key] > allowed[key])
    if grown:
        print("mypy: more errors than mypy-baseline.txt allows:", file=sys.stderr)
        for key in grown:
            file, code = key.rsplit(":", 1)
            print(f"  {key}: {counts[key]} (baseline {allowed[key]})", file=sys.stderr)
            for line in lines:
                if line.startswith(file + ":") and (line.endswith(f"[{code}]") or code == "no-code"):
                    print(f"    {line}", file=sys.stderr)
        print(
            "Fix the new errors above (the baseline only ever shrinks; do not raise a count). "
            "To see every error: python -m mypy",
            file=sys.stderr,
        )
        return 1
    shrunk = sorted(key for key in allowed if counts[key] < allowed[key])
    total, limit = sum(counts.values()), sum(allowed.values())
    print(f"mypy: {total} errors, baseline {limit}: none new")
    if shrunk:
        print(
            f"{len(shrunk)} file:code counts went down ({', '.join(shrunk[:5])}{', ...' if len(shrunk) > 5 else ''}): "
            "lock the gain in with `python scripts/mypy_baseline.py --update` and commit mypy-baseline.txt"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
