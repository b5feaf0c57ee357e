"""Benchmark: monitor_drift's sampled path against an unsampled Evidently run, in one run.

    python bench/monitor_drift.py                              # 1M-row interval; unsampled run on 200k rows
    python bench/monitor_drift.py --unsampled-rows 1000000     # the full unsampled comparison (minutes, GBs)
    python bench/monitor_drift.py --rows 200000 --skip-unsampled
    python bench/monitor_drift.py --skip-unsampled                 # 1M rows: monitor_drift vs + estimation and segments

Generates the demo dataset in a temporary project (labelled history, one drifted interval as CSV,
a LightGBM model trained on the history), builds the reference sample once (as registration does;
not timed), then runs each variant in its own child process so peak RSS is measured per variant:
  (a) sampled: driftline.drift.monitor.compare_interval, exactly what the monitor_interval task
      runs between its two small database calls (the decision's path; the reference's attributions
      are cached per model sha256 after the first run, as in production), then the raw-Evidently
      baseline the render_report task runs on the same samples (import, report, HTML) (stream the CSV, seeded sample of [drift]
      sample_rows, score the sample, Evidently report, effect sizes, HTML);
  (b) unsampled: the same code with sample_rows raised to --unsampled-rows, so Evidently compares
      up to that many interval rows with up to that many reference rows.
Prints seconds per stage, rows/s over the rows read, peak RSS (resource.getrusage), and the
Evidently import time on its own (paid once per task process).

Then estimated performance beside it, in one child: (a) again, then what the estimate_performance
step adds on the same interval: CBPE over every row's score (calibrate + estimate_binary with its
bands) and [monitoring] segments (config/demo.toml's: the rows compare's read kept joined with the
scores, totals, per-segment drift tests and CBPE; drift.segments.segment_rows). The interval's scores come from
Postgres in production; here they are computed before the clock starts (reading 1M scores back is
not in the figure, nor are the few inserts). BENCH_PROFILE=1 prints a profile of the segments part.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START = datetime(2026, 11, 1, tzinfo=timezone.utc)
END = datetime(2026, 11, 2, tzinfo=timezone.utc)


def write_project(root: Path, rows: int, history_days: int, chunk_rows: int) -> Path:
    """Demo config (own paths under root), history, one drifted interval, a trained model; returns the config."""
    from datetime import timedelta

    import numpy as np
    import pandas as pd

    from driftline.config import load_config
    from driftline.devtools.demo_data import _inject_bad_rows, transactions
    from driftline.training import train

    text = (REPO / "config" / "demo.toml").read_text()
    text = re.sub(r"^chunk_rows = .*$", f"chunk_rows = {chunk_rows}", text, flags=re.M)
    (root / "config").mkdir(parents=True)
    path = root / "config" / "demo.toml"
    path.write_text(text)
    config = load_config(path)

    rng = np.random.default_rng(7)
    history = pd.concat(
        [transactions(rng, START - timedelta(days=history_days - d), 20_000, f"h{d:03d}") for d in range(history_days)],
        ignore_index=True,
    )
    Path(config.resolve_location(config.history_uri)).parent.mkdir(parents=True, exist_ok=True)
    history.to_parquet(config.resolve_location(config.history_uri), index=False)
    day = transactions(rng, START, rows, "bench", drift=0.5)
    source = Path(config.input_location(START, END))
    source.parent.mkdir(parents=True, exist_ok=True)
    _inject_bad_rows(day.drop(columns=["is_fraud"]), rng, START).to_csv(source, index=False)

    trained = train(config, history)
    (root / "model.txt").write_text(trained.model_text)
    (root / "manifest.json").write_text(json.dumps(trained.manifest))
    return path


def load_bench_model(root: Path):
    """The model as monitoring loads it: the native booster (load_model(scoring_only=True)), no lightgbm."""
    import hashlib

    from driftline.registry import LoadedModel
    from driftline.scoring.native_booster import NativeBooster

    manifest = json.loads((root / "manifest.json").read_text())
    text = (root / "model.txt").read_bytes()
    digest = hashlib.sha256(text).hexdigest()
    return LoadedModel(version=1, booster=NativeBooster(text), manifest=manifest, sha256=digest, text=text)


def with_sample_rows(config, sample_rows: int):
    return dataclasses.replace(config, drift=dataclasses.replace(config.drift, sample_rows=sample_rows))


def reference_file(root: Path, sample_rows: int) -> Path:
    return root / f"reference_{sample_rows}.parquet"


def child(config_path: str, sample_rows: int) -> dict:
    """One variant in this process; peak RSS covers only this variant. The decision's path
    (compare_interval: sample, score, attribution, drift statistics) is timed apart from the
    Evidently report the render_report task draws from the same samples (the raw-Evidently baseline)."""
    t = time.perf_counter()
    import pandas as pd

    from driftline.config import load_config
    from driftline.drift.monitor import compare_interval

    import_seconds = time.perf_counter() - t
    root = Path(config_path).parents[1]
    config = with_sample_rows(load_config(config_path), sample_rows)
    model = load_bench_model(root)
    reference = pd.read_parquet(reference_file(root, sample_rows))
    stages: dict[str, float] = {}
    started = time.perf_counter()
    current, features, prediction, rows_read = compare_interval(
        config, model, reference, START, END, set(), stages, {"reference_file": reference_file(root, sample_rows)}
    )
    seconds = time.perf_counter() - started
    current_rows = len(current)

    t = time.perf_counter()
    import evidently.metrics  # noqa: F401 - the render_report task's import
    import evidently.presets  # noqa: F401

    from driftline.drift.report import report_path, run_report, save_html

    evidently_import = time.perf_counter() - t
    t = time.perf_counter()
    html = report_path(config, START, END).with_name(f"bench_{sample_rows}.html")
    save_html(run_report(config, reference, current), html)
    evidently_report = time.perf_counter() - t
    return {
        "evidently_import_seconds": evidently_import,
        "evidently_report_seconds": evidently_report,
        "sample_rows": sample_rows,
        "rows_read": rows_read,
        "current_rows": current_rows,
        "reference_rows": len(reference),
        "seconds": seconds,
        "import_seconds": import_seconds,
        "stages": stages,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "drifted": sorted(f.column_name for f in features if f.counted),
        "prediction_drift": prediction.statistic,
        "html": str(html),
    }


def child_estimate(config_path: str) -> dict:
    """monitor_drift's compare step, then estimation and segments on the same interval, timed apart;
    import: what a fresh task process imports for them (the decision's path, no Evidently)."""
    t = time.perf_counter()
    import numpy as np
    import pandas as pd

    from driftline.config import load_config
    from driftline.drift.interval_rows import IntervalRows
    from driftline.drift.monitor import compare_interval
    from driftline.drift.segments import segment_rows, top_values
    from driftline.estimation import calibrate, estimate_binary
    from driftline.scoring.engine import predict
    from driftline.sources import read_interval

    import_seconds = time.perf_counter() - t
    root = Path(config_path).parents[1]
    config = load_config(config_path)
    model = load_bench_model(root)
    reference = pd.read_parquet(reference_file(root, config.drift.sample_rows))
    keys, scores = [], []
    for chunk in read_interval(
        config.input_location(START, END), config, START, END
    ):  # not timed: Postgres holds these
        frame = chunk.typed.to_pandas()
        keys.append(frame[config.entity_key].astype(str))
        scores.append(predict(model, frame, config))
    predictions = pd.DataFrame({"entity_key": pd.concat(keys, ignore_index=True), "score": np.concatenate(scores)})
    t = time.perf_counter()
    ref_file = {"reference_file": reference_file(root, config.drift.sample_rows)}
    rows = IntervalRows(config)  # the segments' input, kept by compare's one read (as monitor_interval does)
    compare_interval(config, model, reference, START, END, set(), {}, ref_file, rows)
    compare = time.perf_counter() - t

    calibration = model.manifest["calibration"]
    t = time.perf_counter()
    values = predictions["score"].to_numpy()
    estimate_binary(
        calibrate(calibration, values), values, config.threshold, calibration_sd=calibration.get("uncertainty")
    )
    estimate = time.perf_counter() - t

    t = time.perf_counter()
    kept = {c: [v for v, _ in top_values(reference[c], config.monitoring.top_n)] for c in config.monitoring.segments}
    context = {"start": START, "end": END, "version": 1, "run_id": "bench", "predictions": predictions}
    context |= {"reference": reference, "calibration": calibration, "labels": pd.DataFrame(), "rows": rows}
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        profile = cProfile.Profile()
        intervals, estimates = profile.runcall(segment_rows, config, context, kept)
        pstats.Stats(profile, stream=sys.stderr).sort_stats("cumtime").print_stats(25)
    else:
        intervals, estimates = segment_rows(config, context, kept)
    segments = time.perf_counter() - t
    return {
        "rows": len(predictions),
        "import": import_seconds,
        "compare": compare,
        "estimate": estimate,
        "segments": segments,
        "segment_values": len(intervals),
        "segment_estimates": len(estimates),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def show_estimate(result: dict) -> None:
    base = result["compare"]
    print(f"\nestimated performance on the same interval ({result['rows']:,} scored rows), one process:")
    print(f"  import (decision path, no Evidently)        {result['import']:7.2f} s")
    print(f"  monitor_drift compare (sampled, as above)   {base:7.2f} s")
    for label, seconds in (("+ CBPE estimate (every row)", result["estimate"]), ("+ segments", result["segments"])):
        print(f"  {label:<43} {seconds:7.2f} s  (+{100 * seconds / base:.1f}%)")
    both = result["estimate"] + result["segments"]
    print(
        f"  {'with estimation and segments':<43} {base + both:7.2f} s  (+{100 * both / base:.1f}%; "
        f"{result['segment_values']} segment values, {result['segment_estimates']} segment estimates; "
        f"peak RSS {result['peak_rss_mib']:.0f} MiB)"
    )
    print(f"  {'total with imports':<43} {result['import'] + base + both:7.2f} s  (goal <= 5 s, peak RSS < 1024 MiB)")


def setup(root: Path, rows: int, history_days: int, chunk_rows: int, sample_sizes: list[int]) -> dict:
    """Data, model and the reference samples (built once per model version in production: not timed)."""
    from driftline.config import load_config
    from driftline.drift.reference import build_reference

    config_path = write_project(root, rows, history_days, chunk_rows)
    config = load_config(config_path)
    model = load_bench_model(root)
    for sample_rows in sample_sizes:
        build_reference(with_sample_rows(config, sample_rows), model).to_parquet(reference_file(root, sample_rows))
    size = Path(config.input_location(START, END)).stat().st_size / 2**20
    return {"config": str(config_path), "default_sample_rows": config.drift.sample_rows, "input_mib": size}


def run_child(*arguments: str) -> dict:
    # The parent stays small (no pandas, no data): Linux carries a parent's peak RSS into a child's
    # ru_maxrss across fork + exec, so a big parent would inflate every child's figure.
    out = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True, check=False)
    if os.environ.get("BENCH_PROFILE"):
        sys.stderr.write(out.stderr[-12000:])
    if out.returncode != 0:
        raise SystemExit(f"child {' '.join(arguments)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def show(label: str, result: dict) -> None:
    stages = "  ".join(f"{k} {v:.2f}s" for k, v in result["stages"].items())
    print(
        f"{label:<11} {result['rows_read']:>9,} rows read  {result['current_rows']:>9,} vs {result['reference_rows']:>7,} "
        f"compared  {result['seconds']:6.2f} s  {result['rows_read'] / result['seconds']:>10,.0f} rows/s  "
        f"peak RSS {result['peak_rss_mib']:6.0f} MiB  (+ import {result['import_seconds']:.1f} s)"
    )
    print(f"{'':<11} {stages}")
    print(
        f"{'':<11} raw-Evidently baseline on the same samples (render_report task, off the decision's path): "
        f"import {result['evidently_import_seconds']:.2f} s  report + HTML {result['evidently_report_seconds']:.2f} s"
    )
    print(
        f"{'':<11} drifted: {', '.join(result['drifted']) or 'none'}; prediction drift {result['prediction_drift']:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the monitored interval")
    parser.add_argument("--unsampled-rows", type=int, default=200_000, help="cap of the unsampled comparison")
    parser.add_argument("--skip-unsampled", action="store_true")
    parser.add_argument("--history-days", type=int, default=10, help="days of 20k labelled rows (reference source)")
    parser.add_argument("--chunk-rows", type=int, default=200_000)
    parser.add_argument("--skip-estimate", action="store_true", help="no estimation / segments comparison")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-estimate", help=argparse.SUPPRESS)
    parser.add_argument("--setup", help=argparse.SUPPRESS)
    parser.add_argument("--sample-rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.sample_rows)))
        return
    if args.child_estimate:
        print(json.dumps(child_estimate(args.child_estimate)))
        return
    sample_sizes = [50_000] if args.skip_unsampled else [50_000, args.unsampled_rows]
    if args.setup:
        print(json.dumps(setup(Path(args.setup), args.rows, args.history_days, args.chunk_rows, sample_sizes)))
        return

    with tempfile.TemporaryDirectory(prefix="driftline-bench-drift-") as tmp:
        print(f"generating {args.rows:,} interval rows and {args.history_days * 20_000:,} history rows in {tmp} ...")
        t = time.perf_counter()
        options = [
            "--rows",
            str(args.rows),
            "--history-days",
            str(args.history_days),
            "--chunk-rows",
            str(args.chunk_rows),
        ]
        if args.skip_unsampled:
            options.append("--skip-unsampled")
        project = run_child("--setup", tmp, "--unsampled-rows", str(args.unsampled_rows), *options)
        if project["default_sample_rows"] != sample_sizes[0]:
            sys.exit(
                f"[drift] sample_rows in config/demo.toml is {project['default_sample_rows']}; this bench assumes 50000"
            )
        print(f"setup {time.perf_counter() - t:.0f} s; input CSV {project['input_mib']:.0f} MiB\n")

        print(f"python {platform.python_version()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
        for label, sample_rows in zip(("sampled", "unsampled"), sample_sizes):
            show(label, run_child("--child", project["config"], "--sample-rows", str(sample_rows)))
        if not args.skip_estimate:
            show_estimate(run_child("--child-estimate", project["config"]))
        if not args.skip_unsampled and args.unsampled_rows < args.rows:
            print(
                f"\nunsampled run capped at {args.unsampled_rows:,} rows per side (--unsampled-rows); "
                f"pass --unsampled-rows {args.rows} for the full interval"
            )


if __name__ == "__main__":
    main()
