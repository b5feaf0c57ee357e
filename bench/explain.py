"""Benchmark: TreeSHAP per explained row, LightGBM's pred_contrib beside Linear TreeSHAP, in one run.

    python bench/explain.py                 # demo model + a 20-feature, 200-tree model
    python bench/explain.py --rows 200000   # the interval whose top 1/5/10% is explained
    python bench/explain.py --repeat 5      # more interleaved repeats (the median counts)

Both models are trained here (seeded): the demo config's own (demo data, 200 trees x 31 leaves)
and a synthetic one (20 features, 6 categorical, 200 trees x 31 leaves). Everything runs in this
process on one thread and is timed in CPU seconds (`time.process_time`), the two methods
interleaved so both see the same minutes of this shared machine. Per model it prints:
  - CPU ms per explained row (2,000 rows) for pred_contrib (NativeBooster, the scoring path's) and
    Linear TreeSHAP, their ratio, and the largest absolute difference between them;
  - the cost of explaining the top 1%, 5% and 10% of an interval (select, build the rows' matrix,
    contributions, top-k) relative to plain scoring of it (matrix + NativeBooster.predict).
The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "include"), str(ROOT)]


def cpu(function, *args) -> tuple[float, object]:
    started = time.process_time()
    result = function(*args)
    return time.process_time() - started, result


def demo_model(workdir: Path):
    """(model text, config, feature binding, day) of the demo config, trained on 50k demo rows."""

    from driftline.config import load_config
    from driftline.devtools.demo_data import transactions
    from driftline.training import train
    from tests.helpers import config_copy

    config = load_config(config_copy(workdir))
    day = datetime(2026, 10, 1, tzinfo=timezone.utc)
    model = train(config, transactions(np.random.default_rng(7), day, 50_000, "h"))
    from driftline.scoring.features import model_binding

    # model_binding reads the model text as the registry stores it (bytes).
    return model.model_text, config, model_binding(model.manifest, model.model_text.encode(), None), day


def synthetic_model(rows: int):
    """(model text, matrix of `rows` rows): 14 numeric + 6 categorical features, 200 trees x 31 leaves."""
    import lightgbm as lgb

    rng = np.random.default_rng(3)

    def data(n):
        X = rng.normal(size=(n, 20))
        X[:, 14:] = rng.integers(0, 12, (n, 6))
        X[rng.random(X.shape) < 0.05] = np.nan
        return X

    X = data(50_000)
    signal = X[:, 0] + np.nan_to_num(X[:, 1]) * np.nan_to_num(X[:, 2]) + (X[:, 15] == 3) + np.sin(X[:, 3])
    y = (signal + rng.normal(size=len(X)) > 0).astype(int)
    params = {"objective": "binary", "num_leaves": 31, "verbose": -1, "num_threads": 1, "seed": 3}
    booster = lgb.train(params, lgb.Dataset(X, y, categorical_feature=list(range(14, 20))), 200)
    return booster.model_to_string(), data(rows)


def compare(name: str, text: str, interval, to_matrix, repeat: int, top_k: int) -> None:
    """Print both methods' CPU ms per explained row and the top-fraction costs for one model."""
    from driftline.config import ExplainSettings
    from driftline.scoring.explain import select_rows, top_reasons
    from driftline.scoring.native_booster import NativeBooster
    from driftline.scoring.treeshap import for_model

    native, linear = NativeBooster(text), for_model(text)
    assert linear is not None, "Linear TreeSHAP could not be built here (no C compiler?)"
    sample = to_matrix(interval, np.arange(2000))
    times = {"pred_contrib": [], "linear": []}
    for _ in range(repeat):
        seconds, expected = cpu(native.contributions, sample, 1)
        times["pred_contrib"].append(seconds)
        seconds, got = cpu(linear.contributions, sample, 1)
        times["linear"].append(seconds)
    slow, fast = (statistics.median(times[key]) / len(sample) * 1e3 for key in ("pred_contrib", "linear"))
    print(f"\n{name}: CPU ms per explained row (median of {repeat}, {len(sample)} rows, one thread)")
    print(f"  pred_contrib (TreeSHAP)   {slow:7.3f} ms")
    print(f"  Linear TreeSHAP           {fast:7.3f} ms   {slow / fast:.1f}x less CPU")
    print(f"  largest |difference|      {np.abs(got - expected).max():.1e}")

    everything = len(interval)
    plain = []
    for _ in range(repeat):
        seconds, scores = cpu(lambda: native.predict(to_matrix(interval, None), 1))
        plain.append(seconds)
    plain_seconds = statistics.median(plain)
    print(f"  plain scoring of {everything:,} rows: {plain_seconds:.3f} CPU s (matrix + predict)")
    for fraction in (0.01, 0.05, 0.10):
        chosen = select_rows(scores, ExplainSettings(top_k=top_k, top_fraction=fraction))
        line = f"  explain top {fraction:4.0%} ({len(chosen):,} rows):"
        for label, method in (("pred_contrib", native.contributions), ("linear", linear.contributions)):
            runs = []
            for _ in range(repeat):
                seconds, _ = cpu(
                    lambda method=method, chosen=chosen: top_reasons(method(to_matrix(interval, chosen), 1), top_k),
                )
                runs.append(seconds)
            line += f"  {label} +{statistics.median(runs) / plain_seconds:6.1%}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the interval (default 100,000)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory(prefix="driftline-bench-explain-") as tmp:
        os.environ.setdefault("DRIFTLINE_CACHE_DIR", str(Path(tmp) / "cache"))  # the build is timed apart
        import pyarrow as pa

        from driftline.devtools.demo_data import transactions
        from driftline.scoring.features import model_matrix
        from driftline.scoring.treeshap import for_model

        started = time.perf_counter()
        text, config, binding, day = demo_model(Path(tmp))
        frame = transactions(np.random.default_rng(11), day, args.rows, "s").drop(columns=[config.target])
        rows = pa.Table.from_pandas(frame, preserve_index=False)
        built = time.perf_counter()
        for_model(text)
        print(
            f"trained the demo model in {built - started:.1f} s; built Linear TreeSHAP in {time.perf_counter() - built:.1f} s"
        )
        compare(
            "demo model (demo config: 200 trees x 31 leaves)",
            text,
            rows,
            lambda table, at: model_matrix(table if at is None else table.take(pa.array(at)), binding),
            args.repeat,
            args.top_k,
        )
        text, matrix = synthetic_model(args.rows)
        compare(
            "synthetic model (20 features, 6 categorical, 200 trees x 31 leaves)",
            text,
            matrix,
            lambda data, at: data if at is None else np.ascontiguousarray(data[at]),
            args.repeat,
            args.top_k,
        )
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
