"""Benchmark: an imported scikit-learn pipeline through score_batch, beside driftline's own LightGBM
path and the naive baseline, on the same rows.

    python bench/score_imported.py                 # 200k rows x 20 features
    python bench/score_imported.py --rows 1000000

Builds bench/score_batch.py's project (history, one interval with ~0.1% bad cells, a LightGBM
champion of 200 trees x 31 leaves), then a second schema whose champion is imported with
`driftline import-model`: a Pipeline (one-hot encoder on the categoricals, numerics passed
through, LGBMClassifier with the same 200 trees x 31 leaves) fitted on the same history, saved with
skops, parity proven on 2,000 rows. Each path runs in its own child process (peak RSS per path):
  lightgbm  score_interval with the trained champion ([scoring] engine as configured: compiled)
  sklearn   score_interval with the imported pipeline (pandas frame by name, per chunk)
  baseline  pandas.read_csv -> booster.predict -> to_sql (bench/score_batch.py's)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import score_batch as base  # noqa: E402 - the sibling bench script's project, data and child runner


def imported_variant(config_path: Path) -> Path:
    """A second config over the same data: its own schema and registry, scored by an imported pipeline."""
    text = config_path.read_text().replace('schema = "driftline_bench"', 'schema = "driftline_bench_sklearn"')
    text = text.replace('registry_dir = "models"', 'registry_dir = "models_sklearn"')
    path = config_path.with_name("bench_sklearn.toml")
    path.write_text(text)
    return path


def import_pipeline(config_path: Path, root: Path) -> dict:
    """Fit the notebook's pipeline on the history, save it with skops, import it with parity."""
    import pandas as pd
    import skops.io as sio
    from lightgbm import LGBMClassifier
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from driftline.config import load_config
    from driftline.handoff.importer import import_model

    config = load_config(config_path)
    history = pd.read_parquet(config.resolve_location(config.history_uri))
    features = ColumnTransformer(
        [
            ("numeric", "passthrough", config.numeric_features),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), config.categorical_features),
        ]
    )
    model = Pipeline(
        [("features", features), ("model", LGBMClassifier(n_estimators=200, num_leaves=31, verbose=-1, n_jobs=2))]
    )
    model.fit(history[config.feature_names], history[config.target])
    sio.dump(model, root / "model.skops")
    sample = history.tail(2000)
    sample.drop(columns=[config.target]).to_parquet(root / "sample.parquet")
    scores = model.predict_proba(sample[config.feature_names])[:, 1]
    pd.DataFrame({"key": sample[config.entity_key].astype(str), "score": scores}).to_csv(
        root / "predictions.csv", index=False, float_format="%.17g"
    )
    until = pd.Timestamp(history[config.event_time].max()).isoformat()
    return import_model(
        str(config_path), str(root / "model.skops"), str(root / "predictions.csv"), until, str(root / "sample.parquet")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--chunk-rows", type=int, default=200_000)
    args = parser.parse_args()
    url = os.environ.get("DRIFTLINE_DB_URL")
    if not url:
        raise SystemExit("set DRIFTLINE_DB_URL (a PostgreSQL the bench may write schemas into)")
    with tempfile.TemporaryDirectory(prefix="driftline-bench-imported-") as tmp:
        root = Path(tmp)
        cache = str(root / "cache")
        env = {**os.environ, "GX_ANALYTICS_ENABLED": "False", "DRIFTLINE_CACHE_DIR": cache}
        os.environ["DRIFTLINE_CACHE_DIR"] = cache
        config_path = base.write_project(root, args.features, args.chunk_rows)
        base.generate(config_path, args.rows, args.features)
        engine, seconds = base.compile_model(config_path)
        print(f"LightGBM champion: engine {engine}, compiled in {seconds:.1f} s (once per version and machine)")
        sklearn_path = imported_variant(config_path)
        imported = import_pipeline(sklearn_path, root)
        print(f"imported pipeline v{imported['version']}: parity {imported['parity']}")
        for kind, path in (("production", config_path), ("production", sklearn_path), ("baseline", config_path)):
            result = base.spawn(kind, path, env)
            label = "sklearn" if path == sklearn_path else ("lightgbm" if kind == "production" else "baseline")
            base.report(label, result)


if __name__ == "__main__":
    main()
