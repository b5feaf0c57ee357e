"""Turn typed rows into model inputs and scores, and check them: features (model inputs), engine
(Scorer, predict), safeguards (output checks); compiled, native_booster and explain serve the engine."""
