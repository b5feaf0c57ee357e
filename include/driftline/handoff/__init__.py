"""Models trained elsewhere (a notebook, MLflow): read them safely, check them against the config,
prove they score like the notebook did, register them, and retrain them with their own recipe.

files.py: read a model file (LightGBM text, skops, pickle only when pinned) with its trusted types;
sklearn_model.py: score a scikit-learn estimator or Pipeline on the config's columns;
contract.py: the model's features and categories against the config, and a starting config;
parity.py: driftline's scores of a sample against the notebook's; mlflow_source.py: MLflow URIs;
importer.py: `driftline import-model`; recipe.py: a candidate trained the way the champion was.
"""

from driftline.handoff.files import ARTIFACT_FILES, KINDS, ModelFile, UntrustedModel, load_artifact, read_model_file

__all__ = ["ARTIFACT_FILES", "KINDS", "ModelFile", "UntrustedModel", "load_artifact", "read_model_file"]
