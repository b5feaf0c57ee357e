"""Benchmark: parse time of the DAG files with N dataset configs, as `airflow dags report -o json` prints it.

    python bench/dag_parse.py                  # 10 configs, 3 reports
    python bench/dag_parse.py --configs 1      # the single-dataset baseline
    python bench/dag_parse.py --configs 25 --repeat 5

Writes N copies of config/demo.toml (each its own name, schema, registry and reports folder) into a
temporary configs folder, points $DRIFTLINE_CONFIGS at it, migrates a throwaway SQLite Airflow
metadata database (the report command needs one; parsing itself touches no database: the predictions
database is an unreachable URL), then runs `airflow dags report -o json` --repeat times and prints
each DAG file's parse duration (wall time, as Airflow reports it) and DAG count per run, then the
CPU seconds of each file's parse by the same loader, each file in a fresh process (as the
dag-processor parses it), which the load of other jobs on the machine does not inflate. Run 1 of
each includes compiling driftline's modules to bytecode (cached for the later runs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.helpers import config_copy  # noqa: E402 - the repository's config-copy helper

# One DAG file parsed by Airflow's loader in a fresh process, as the dag-processor parses each file in
# a process of its own with the framework loaded (the airflow.* modules the file imports are
# pre-imported: [dag_processor] parsing_pre_import_modules); timed in CPU seconds of that process.
CPU_PROBE = r"""
import importlib, json, sys, time
import airflow.sdk
from airflow.dag_processing.dagbag import DagBag
from airflow.utils.file import iter_airflow_imports
path = sys.argv[1]
for name in iter_airflow_imports(path):
    importlib.import_module(name)
airflow.sdk.task.short_circuit  # the lazy decorator modules
bag = DagBag(dag_folder=path, collect_dags=False)
start = time.process_time()
bag.process_file(path)
print(json.dumps(time.process_time() - start))
"""


def write_configs(root: Path, count: int) -> Path:
    for number in range(count):
        name = f"dataset_{number:02d}"
        keys = {
            "name": f'"{name}"',
            "schema": f'"{name}"',
            "registry_dir": f'"models/{name}"',
            "reports_dir": f'"reports/{name}"',
        }
        config_copy(root, name=f"{name}.toml", keys=keys)
    return root / "config"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    airflow = str(Path(sys.executable).parent / "airflow")
    with tempfile.TemporaryDirectory(prefix="driftline-dag-parse-") as tmp:
        home = Path(tmp) / "airflow"
        home.mkdir()
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "DRIFTLINE_CONFIGS": str(write_configs(Path(tmp) / "project", args.configs)),
            "DRIFTLINE_DB_URL": "postgresql://nobody@127.0.0.1:1/none",  # parsing must never need it
        }
        env.pop("DRIFTLINE_CONFIG", None)
        # Bytecode cached (in the temporary folder), as in an installed deployment: with
        # PYTHONDONTWRITEBYTECODE every parse would also compile driftline's modules from source.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        print(f"{args.configs} dataset config(s); load average {os.getloadavg()[0]:.1f} (2 cores: {os.cpu_count()})")
        for run in range(1, args.repeat + 1):
            out = subprocess.run(
                [airflow, "dags", "report", "-o", "json"], env=env, check=True, capture_output=True, text=True
            )
            report = json.loads(out.stdout.strip().splitlines()[-1])
            shown = ", ".join(
                f"{row['file']} {float(row['duration'].rsplit(':', 1)[1]):.3f} s ({row['dag_num']} DAGs)"
                for row in sorted(report, key=lambda row: row["file"])
            )
            print(f"run {run}: {shown}")
        for run in range(1, args.repeat + 1):
            cpu = {}
            for path in sorted((REPO / "dags").glob("*.py")):
                out = subprocess.run(
                    [sys.executable, "-c", CPU_PROBE, str(path)], env=env, check=True, capture_output=True, text=True
                )
                cpu[path.name] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"run {run}, CPU: " + ", ".join(f"{name} {seconds:.3f} s" for name, seconds in cpu.items()))
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
