"""Benchmark: partitioned scoring (plan -> score_partition x P -> publish_partitions) against the
single-task path, on the same interval, in one run.

Generates the interval like bench/score_batch.py (N rows x F features, a 200-tree model), splits it
into --files CSV files, and scores it:
  single        score_interval over the directory, one process (what a small interval gets)
  partitioned   plan_partitions, then the partitions on W worker processes at once (as W Celery
                worker slots would run them), then publish_partitions; for each W in --workers
Prints seconds, rows/s, speedup over single, and the stage split (plan, partitions, publish).

  DRIFTLINE_DB_URL=postgresql://... python bench/partitioned_scoring.py --rows 1000000 --files 8 --workers 1 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import score_batch as base  # noqa: E402  (the generator and project layout of the main benchmark)

START, END = base.START, base.END


def split_csv(source: Path, target: Path, files: int) -> int:
    """Split a CSV into `files` CSVs with the header repeated; returns the data rows."""
    with source.open("rb") as handle:
        header = handle.readline()
        lines = handle.readlines()
    target.mkdir(parents=True, exist_ok=True)
    size = -(-len(lines) // files)
    for number in range(files):
        (target / f"part-{number:03d}.csv").write_bytes(header + b"".join(lines[number * size : (number + 1) * size]))
    return len(lines)


def variant(config_path: Path, name: str, per_partition: int) -> Path:
    text = config_path.read_text()
    text = text.replace(
        'input = "data/input/{interval_start:%Y-%m-%d}.csv"', 'input = "data/parts/{interval_start:%Y-%m-%d}"'
    )
    text = text.replace("[scoring]\n", f"[scoring]\nfiles_per_partition = {per_partition}\n")
    path = config_path.with_name(f"{name}.toml")
    path.write_text(text)
    return path


def empty_tables(config_path: Path) -> None:
    """Each path writes into empty tables (a first write, as bench/score_batch.py measures), not over
    the previous path's rows: replacing 1M rows costs the DELETE and the dead index entries too."""
    from psycopg import sql

    from driftline import db
    from driftline.config import load_config

    config = load_config(config_path)
    with db.connect(os.environ["DRIFTLINE_DB_URL"], autocommit=True) as conn:
        tables = [db.table(config.db_schema, name) for name in ("prediction_rows", "quarantine_rows")]
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(tables)))


def _score_one(args):
    from driftline.partitions import score_partition

    config_path, run_id, partition = args
    return score_partition(config_path, START, END, run_id, partition)


def run_single(config_path: Path) -> dict:
    from driftline.batch import score_interval

    empty_tables(config_path)
    started = time.perf_counter()
    summary = score_interval(str(config_path), START, END, run_id=f"bench_single_{time.time():.0f}")
    return {"seconds": time.perf_counter() - started, "rows_in": summary["rows_in"]}


def run_partitioned(config_path: Path, workers: int) -> dict:
    from driftline.partitions import plan_partitions, publish_partitions

    run_id = f"bench_partitioned_{workers}_{time.time():.0f}"
    empty_tables(config_path)
    started = time.perf_counter()
    plan = plan_partitions(str(config_path), START, END, run_id)
    planned = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(_score_one, [(str(config_path), run_id, p) for p in plan["partitions"]], chunksize=1)
    scored = time.perf_counter()
    summary = publish_partitions(str(config_path), START, END, run_id, plan["run_key"])
    done = time.perf_counter()
    return {
        "seconds": done - started,
        "rows_in": summary["rows_in"],
        "partitions": len(plan["partitions"]),
        "stages": {"plan": planned - started, "partitions": scored - planned, "publish": done - scored},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chunk-rows", type=int, default=200_000)
    args = parser.parse_args()
    if not os.environ.get("DRIFTLINE_DB_URL"):
        parser.error("set DRIFTLINE_DB_URL to a PostgreSQL database the benchmark may write schema driftline_bench in")

    with tempfile.TemporaryDirectory(prefix="driftline-bench-parts-") as folder:
        root = Path(folder)
        os.environ["DRIFTLINE_HOME"] = str(root)
        config_path = base.write_project(root, args.features, args.chunk_rows)
        from driftline import db

        with db.connect(os.environ["DRIFTLINE_DB_URL"], autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS driftline_bench CASCADE")  # a registry left by an earlier run
        print(f"generating {args.rows:,} rows x {args.features} features and the model ...", flush=True)
        base.generate(config_path, args.rows, args.features)
        rows = split_csv(
            root / "data" / "input" / f"{START:%Y-%m-%d}.csv", root / "data" / "parts" / f"{START:%Y-%m-%d}", args.files
        )
        # Compile the model once before timing (a private cache, inherited by the worker processes):
        # in production it is compiled once per model version and machine.
        os.environ["DRIFTLINE_CACHE_DIR"] = str(root / "cache")
        engine, compile_seconds = base.compile_model(config_path)
        print(f"model: {engine} engine, compiled in {compile_seconds:.1f} s before the timed runs")
        print(f"{rows:,} rows in {args.files} files; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}\n")

        results = [("single task", 1, run_single(variant(config_path, "single", 0)))]
        partitioned = variant(config_path, "partitioned", 1)
        for workers in args.workers:
            results.append((f"{args.files} partitions", workers, run_partitioned(partitioned, workers)))

        single_seconds = results[0][2]["seconds"]
        print(f"{'path':<16}{'workers':>8}{'seconds':>9}{'rows/s':>10}{'speedup':>9}  stages")
        for name, workers, result in results:
            stages = ", ".join(f"{k} {v:.1f} s" for k, v in result.get("stages", {}).items())
            print(
                f"{name:<16}{workers:>8}{result['seconds']:>9.1f}{result['rows_in'] / result['seconds']:>10,.0f}"
                f"{single_seconds / result['seconds']:>8.2f}x  {stages}"
            )


if __name__ == "__main__":
    main()
