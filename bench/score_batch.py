"""Benchmark: score_batch's production path against a naive baseline, in one run.

    python bench/score_batch.py                    # 1M rows x 20 features
    python bench/score_batch.py --rows 10000000    # memory must stay flat as rows grow
    python bench/score_batch.py --skip-baseline    # production path only
    python bench/score_batch.py --format parquet   # the same rows as Parquet input
    python bench/score_batch.py --source sql       # + the same rows read from a Postgres table, beside the file
    python bench/score_batch.py --repeat 5         # more production runs (the median counts)
    python bench/score_batch.py --explain-top-k 3 --explain-fraction 0.1 1.0
                                                   # + production runs with [explain] on, beside the plain path

Generates the data and a LightGBM model (200 trees, 31 leaves) in a temporary project, then runs
each path in its own child process so peak RSS is measured per path:
  (a) production: driftline.batch.score_interval, exactly what the score_batch task calls
      (read -> GE validation -> quarantine split -> predict -> delete + COPY in one transaction);
      --repeat times (default 3), each a first write of the interval; the median counts. Then
      once more over the rows the last run wrote (a rerun/backfill of a scored interval);
  (b) baseline: pandas.read_csv -> booster.predict -> DataFrame.to_sql (the notebook way).
  (c) with --explain-top-k: the production path again with an [explain] section (top_k, and
      top_fraction = each --explain-fraction), so its cost is printed beside the plain path's.
  (d) with --source sql: the production path again reading the same rows from a table in the same
      Postgres ([source] input = { url, table, event_time }; typed columns, loaded once with COPY),
      each run right after a file run, so both medians come from the same minutes of this machine.
Postgres: $DRIFTLINE_DB_URL, else the embedded pgserver. Prints rows/s per stage and in total,
the ratio to the baseline, and peak RSS. The compiled model ([scoring] engine = "compiled") is
built once before the timed runs, into a cache private to this run, and its compile time printed:
in production it is paid once per model version and machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

START = datetime(2026, 11, 1, tzinfo=timezone.utc)
END = datetime(2026, 11, 2, tzinfo=timezone.utc)
CATEGORIES = [f"c{i}" for i in range(12)]


def feature_names(count: int) -> tuple[list[str], list[str]]:
    categorical = max(1, count * 3 // 10)
    return [f"num_{i:02d}" for i in range(count - categorical)], [f"cat_{i:02d}" for i in range(categorical)]


def write_project(root: Path, features: int, chunk_rows: int, input_format: str = "csv") -> Path:
    numeric, categorical = feature_names(features)
    lines = [
        "[dataset]",
        'name = "bench"',
        'entity_key = "row_id"',
        'event_time = "event_time"',
        'target = "label"',
    ]
    for name in numeric:
        lines += [f"[features.{name}]", 'type = "numeric"', "min = -100", "max = 100"]
    for name in categorical:
        lines += [f"[features.{name}]", 'type = "categorical"', f"categories = {json.dumps(CATEGORIES)}"]
    lines += [
        "[source]",
        f'input = "data/input/{{interval_start:%Y-%m-%d}}.{input_format}"',
        'labels = "data/labels.parquet"',
        'history = "data/history.parquet"',
        "[schedule]",
        'cron = "0 0 * * *"',
        "[database]",
        'schema = "driftline_bench"',
        "[validation]",
        'suite = "expectations/bench.json"',
        "quarantine_budget = 0.05",
        "[model]",
        'registry_dir = "models"',
        "num_boost_round = 200",
        "[model.params]",
        'objective = "binary"',
        "num_leaves = 31",
        "seed = 1",
        "deterministic = true",
        "verbose = -1",
        "num_threads = 2",
        "[scoring]",
        f"chunk_rows = {chunk_rows}",
        "[drift]",
        'reports_dir = "reports"',
        "[drift.trigger]",
        "drifted_share = 0.5",
        "prediction_drift = 0.1",
        "effect_size_floor = 0.1",
        "breaches = 2",
        "window = 3",
        "cooldown_hours = 24",
    ]
    (root / "config").mkdir(parents=True)
    path = root / "config" / "bench.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def frame_block(rng, start_row: int, rows: int, numeric: list[str], categorical: list[str], with_label: bool):
    import numpy as np
    import pandas as pd

    data = {
        "row_id": [f"r{i:09d}" for i in range(start_row, start_row + rows)],
        "event_time": pd.Timestamp(START) + pd.to_timedelta(rng.integers(0, 86_400, rows), unit="s"),
    }
    signal = np.zeros(rows)
    for i, name in enumerate(numeric):
        values = rng.normal(0, 10, rows).round(3)
        signal += values * (0.05 if i % 2 else -0.03)
        data[name] = values
    for name in categorical:
        values = rng.choice(CATEGORIES, rows)
        signal += (np.char.str_len(values.astype(str)) - 2) * 0.3
        data[name] = values
    frame = pd.DataFrame(data)
    if with_label:
        frame["label"] = (rng.random(rows) < 1 / (1 + np.exp(-(signal - 2)))).astype("int8")
    return frame


def generate(config_path: Path, rows: int, features: int) -> None:
    """History (for training) and one interval's CSV input with ~0.1% bad cells, written in blocks."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from driftline.config import load_config
    from driftline.training import train_champion
    from driftline.validation import write_suite

    config = load_config(config_path)
    numeric, categorical = feature_names(features)
    rng = np.random.default_rng(0)
    history = frame_block(rng, 0, 100_000, numeric, categorical, with_label=True)
    history_path = Path(config.resolve_location(config.history_uri))
    history_path.parent.mkdir(parents=True, exist_ok=True)
    history.to_parquet(history_path)
    write_suite(config)
    train_champion(str(config_path))

    path = Path(config.input_location(START, END))
    path.parent.mkdir(parents=True, exist_ok=True)
    block = 500_000
    parquet = None
    with open(path, "wb") as sink:
        for first in range(0, rows, block):
            frame = frame_block(rng, first, min(block, rows - first), numeric, categorical, with_label=False)
            frame["event_time"] = frame["event_time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
            bad = rng.random(len(frame)) < 0.001
            frame.loc[bad, numeric[0]] = 1e6  # outside [-100, 100]: quarantined by the suite
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if path.suffix == ".parquet":
                import pyarrow.parquet as pq

                parquet = parquet or pq.ParquetWriter(sink, table.schema)
                parquet.write_table(table)
            else:
                pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(include_header=first == 0))
        if parquet is not None:
            parquet.close()


def compile_model(config_path: Path) -> tuple[str, float]:
    """Build the compiled model once (what the first scoring run on a machine does); (engine, seconds)."""
    from driftline import db
    from driftline.config import load_config
    from driftline.registry import load_model
    from driftline.scoring.engine import Scorer

    config = load_config(config_path)
    with db.connect(db.resolve_db_url(config.db_url, config.db_conn_id, config.root)) as conn:
        scorer = Scorer(load_model(conn, config.db_schema), config)
    return scorer.engine, scorer.compile_seconds


def run_production(config_path: Path) -> dict:
    started = time.perf_counter()
    from driftline.batch import score_interval  # what a fresh task process imports first

    imported = time.perf_counter()
    summary = score_interval(str(config_path), START, END, run_id=f"bench__{time.time():.0f}")
    summary["seconds"] = time.perf_counter() - imported
    summary["import_seconds"] = imported - started
    return summary


def empty_interval(url: str) -> None:
    """Make the next production run a first write of the interval (what a scheduled run is)."""
    from driftline import db

    with db.connect(url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE driftline_bench.prediction_rows, driftline_bench.quarantine_rows, driftline_bench.prediction_reason_rows"
        )
        conn.execute("VACUUM ANALYZE driftline_bench.scoring_runs")


def run_baseline(config_path: Path) -> dict:
    """The notebook way: read everything, predict, to_sql. No validation, no quarantine."""
    import pandas as pd
    import sqlalchemy

    from driftline import db
    from driftline.config import load_config
    from driftline.registry import load_model
    from driftline.scoring.features import bind, model_frame

    config = load_config(config_path)
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url) as conn:
        model = load_model(conn, config.db_schema)
    stages = {}
    started = t = time.perf_counter()
    location = config.input_location(START, END)
    frame = pd.read_parquet(location) if location.endswith(".parquet") else pd.read_csv(location)
    stages["read"] = time.perf_counter() - t
    t = time.perf_counter()
    scores = model.booster.predict(model_frame(frame, bind(model, config)))
    stages["predict"] = time.perf_counter() - t
    t = time.perf_counter()
    out = pd.DataFrame(
        {"entity_key": frame[config.entity_key], "score": scores, "predicted_class": (scores >= 0.5).astype("int16")}
    )
    # SQLAlchemy's default PostgreSQL driver (psycopg2) and to_sql's defaults: what a notebook does.
    engine = sqlalchemy.create_engine(url)
    out.to_sql(
        "baseline_predictions", engine, schema=config.db_schema, if_exists="replace", index=False
    )  # naive baseline
    stages["write_predictions"] = time.perf_counter() - t
    return {
        "rows_in": len(frame),
        "rows_scored": len(frame),
        "stage_seconds": stages,
        "seconds": time.perf_counter() - started,
    }


SQL_SOURCE_SCHEMA = "driftline_bench_source"


def load_sql_source(config_path: Path, url: str, features: int) -> tuple[Path, float]:
    """The interval's CSV loaded once with COPY into a typed table, and a sibling config reading it; (path, seconds)."""
    from driftline import db
    from driftline.config import load_config

    config = load_config(config_path)
    numeric, categorical = feature_names(features)
    columns = ["row_id text", "event_time timestamptz"]
    columns += [f"{name} double precision" for name in numeric] + [f"{name} text" for name in categorical]
    started = time.perf_counter()
    with db.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SQL_SOURCE_SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {SQL_SOURCE_SCHEMA}")
        conn.execute(f"CREATE TABLE {SQL_SOURCE_SCHEMA}.events ({', '.join(columns)})")
        with conn.cursor().copy(f"COPY {SQL_SOURCE_SCHEMA}.events FROM STDIN (FORMAT csv, HEADER true)") as copy:
            with open(config.input_location(START, END), "rb") as source:
                while block := source.read(1 << 20):
                    copy.write(block)
        conn.execute(f"VACUUM ANALYZE {SQL_SOURCE_SCHEMA}.events")
    seconds = time.perf_counter() - started
    path = config_path.with_name("bench_sql.toml")
    table = f'{{ url = "{url}", table = "{SQL_SOURCE_SCHEMA}.events", event_time = "event_time" }}'
    text = config_path.read_text()
    path.write_text(
        "\n".join(f"input = {table}" if line.startswith("input = ") else line for line in text.splitlines())
    )
    return path, seconds


def explain_variant(config_path: Path, top_k: int, fraction: float) -> Path:
    """A sibling config (same project, data and model) with [explain] on."""
    path = config_path.with_name(f"bench_explain_{fraction:g}.toml")
    path.write_text(config_path.read_text() + f"\n[explain]\ntop_k = {top_k}\ntop_fraction = {fraction}\n")
    return path


def peak_rss_mib() -> float:
    """This process's own peak RSS. Not ru_maxrss: Linux carries the parent's RSS at fork into a
    child's ru_maxrss across exec, and the parent here holds the generated data and the model."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_read(config_path: Path) -> dict:
    """The reading contract alone (read_interval: typed chunks with their failures), nothing scored or written."""
    from driftline.config import load_config
    from driftline.sources import read_interval

    config = load_config(config_path)
    started = time.perf_counter()
    rows = sum(chunk.typed.num_rows for chunk in read_interval(config.input_location(START, END), config, START, END))
    return {"rows_in": rows, "seconds": time.perf_counter() - started}


def child(kind: str, config_path: Path) -> None:
    runners = {"production": run_production, "baseline": run_baseline, "read": run_read}
    result = runners[kind](config_path)
    result["peak_rss_mib"] = peak_rss_mib()
    print("RESULT " + json.dumps(result))


def spawn(kind: str, config_path: Path, env: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--config", str(config_path)],
        capture_output=True,
        text=True,
        env=env,
    )
    if out.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{out.stderr[-4000:]}")
    line = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def report(kind: str, result: dict) -> None:
    rows = result["rows_in"]
    engine = f", scoring engine {result['scoring_engine']}" if "scoring_engine" in result else ""
    imported = f" (+ {result['import_seconds']:.2f} s importing driftline.batch)" if "import_seconds" in result else ""
    print(
        f"\n{kind}: {rows:,} rows in {result['seconds']:.2f} s = {rows / result['seconds']:,.0f} rows/s, "
        f"peak RSS {result['peak_rss_mib']:,.0f} MiB{engine}{imported}"
    )
    for stage, seconds in result["stage_seconds"].items():
        per_row = stage not in ("load_suite", "compile_model")  # once per run, not per row
        rate = f"{rows / seconds:>12,.0f} rows/s" if per_row and seconds > 0.001 else ""
        print(f"  {stage:<18} {seconds:>7.2f} s {rate}")
    if "rows_quarantined" in result:
        print(f"  scored {result['rows_scored']:,}, quarantined {result['rows_quarantined']:,}")


def print_sql_beside_file(file_runs: list[dict], sql_runs: list[dict], reads: list[tuple[dict, dict]]) -> None:
    """Median throughput of the file and the SQL source, end to end and reading alone, and the load they ran under."""

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    print(f"\nsource beside source (medians of {len(file_runs)} runs each, interleaved):")
    for index, (name, runs) in enumerate((("CSV file", file_runs), ("SQL table", sql_runs))):
        rows = runs[0]["rows_in"]
        total = median([run["seconds"] for run in runs])
        read = median([pair[index]["seconds"] for pair in reads])
        print(
            f"  {name:<10} end to end {total:6.2f} s = {rows / total:>9,.0f} rows/s; "
            f"reading alone (read_interval, typed chunks) {read:5.2f} s = {rows / read:>10,.0f} rows/s, "
            f"peak RSS {median([pair[index]['peak_rss_mib'] for pair in reads]):,.0f} MiB"
        )
    print(f"  load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--chunk-rows", type=int, default=200_000)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=3, help="production runs (first writes); the median counts (default 3)"
    )
    parser.add_argument("--skip-rerun", action="store_true", help="skip the rerun over the interval's existing rows")
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv", help="input file format (default csv)")
    parser.add_argument(
        "--source",
        choices=["file", "sql"],
        default="file",
        help="sql: also read the same rows from a Postgres table (loaded once with COPY), beside the file (default file)",
    )
    parser.add_argument(
        "--explain-top-k",
        type=int,
        default=0,
        help="also run the production path with [explain] top_k = this (0: off, the default)",
    )
    parser.add_argument(
        "--explain-fraction",
        type=float,
        nargs="+",
        default=[0.1, 1.0],
        help="[explain] top_fraction of each explained run (default: 0.1 1.0)",
    )
    parser.add_argument("--child", choices=["production", "baseline", "read"], help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.config)
        return

    with tempfile.TemporaryDirectory(prefix="driftline-bench-") as tmp:
        root = Path(tmp)
        config_path = write_project(root, args.features, args.chunk_rows, args.format)
        from driftline import db
        from driftline.config import load_config

        config = load_config(config_path)
        url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
        cache = str(root / "cache")  # a fresh compile cache: the compile time below is real
        env = {**os.environ, "DRIFTLINE_DB_URL": url, "GX_ANALYTICS_ENABLED": "False", "DRIFTLINE_CACHE_DIR": cache}
        os.environ["DRIFTLINE_DB_URL"], os.environ["DRIFTLINE_CACHE_DIR"] = url, cache
        with db.connect(url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS driftline_bench CASCADE")
        t = time.perf_counter()
        generate(config_path, args.rows, args.features)
        size = Path(config.input_location(START, END)).stat().st_size
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
            f"database {db.mask_url(url)}"
        )
        print(
            f"input: {args.rows:,} rows x {args.features} features, {args.format} {size / 2**20:,.0f} MiB, "
            f"chunk {args.chunk_rows:,} rows (generated + model trained in {time.perf_counter() - t:.1f} s)"
        )
        engine, seconds = compile_model(config_path)
        print(f"model: {engine} engine, compiled in {seconds:.1f} s (once per model version and machine, then cached)")
        print(f"load average before the runs: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

        sql_path = None
        if args.source == "sql":
            sql_path, seconds = load_sql_source(config_path, url, args.features)
            print(
                f"sql source: {args.rows:,} rows loaded once with COPY into {SQL_SOURCE_SCHEMA}.events in {seconds:.1f} s"
            )

        # Each run a fresh process (as every Airflow task is) scoring the interval into emptied
        # tables; this machine's speed drifts between runs, so the median of --repeat runs counts.
        runs, sql_runs = [], []
        for number in range(1, max(1, args.repeat) + 1):
            empty_interval(url)
            runs.append(spawn("production", config_path, env))
            report(f"production (score_batch path), run {number}", runs[-1])
            if sql_path is not None:
                empty_interval(url)
                sql_runs.append(spawn("production", sql_path, env))
                report(f"production reading the Postgres table (SQL source), run {number}", sql_runs[-1])
        production = sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]
        seconds = sorted(run["seconds"] for run in runs)
        print(
            f"\nproduction median: {production['seconds']:.2f} s = {production['rows_in'] / production['seconds']:,.0f} "
            f"rows/s (runs: {', '.join(f'{x:.2f}' for x in seconds)} s)"
        )
        if sql_runs:
            reads = [
                (spawn("read", config_path, env), spawn("read", sql_path, env)) for _ in range(max(1, args.repeat))
            ]
            print_sql_beside_file(runs, sql_runs, reads)
        if args.explain_top_k:
            # TreeSHAP per explained row, on the scoring thread (LightGBM's threads), its COPY queued
            # beside the predictions': the extra time over the plain median is the cost of [explain].
            plain = production["seconds"]
            explained = []
            for fraction in args.explain_fraction:
                empty_interval(url)
                run = spawn("production", explain_variant(config_path, args.explain_top_k, fraction), env)
                report(f"production with [explain] top_k = {args.explain_top_k}, top_fraction = {fraction:g}", run)
                explained.append((fraction, run))
            print(
                f"\n[explain] beside the plain path (median {plain:.2f} s = {production['rows_in'] / plain:,.0f} rows/s), "
                f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}:"
            )
            for fraction, run in explained:
                seconds = run["seconds"]
                print(
                    f"  top_fraction {fraction:>5g}: {run.get('rows_explained', 0):>9,} rows explained, {seconds:7.2f} s = "
                    f"{run['rows_in'] / seconds:>9,.0f} rows/s, +{(seconds - plain) / plain:.0%} over plain "
                    f"(explain {run['stage_seconds'].get('explain', 0):.2f} s, "
                    f"write_reasons {run['stage_seconds'].get('write_reasons', 0):.2f} s)"
                )
        if not args.skip_rerun:
            rerun = spawn("production", config_path, env)  # replaces the rows the last run wrote
            report("rerun of the scored interval (delete + COPY replaces its rows)", rerun)
        if not args.skip_baseline:
            baseline = spawn("baseline", config_path, env)
            report("baseline (read_csv -> predict -> to_sql)", baseline)
            ratio = (production["rows_in"] / production["seconds"]) / (baseline["rows_in"] / baseline["seconds"])
            print(f"\nproduction (median) / baseline throughput: {ratio:.1f}x")
        with db.connect(url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS driftline_bench CASCADE")
            conn.execute(f"DROP SCHEMA IF EXISTS {SQL_SOURCE_SCHEMA} CASCADE")


if __name__ == "__main__":
    main()
