"""Models trained elsewhere (a notebook, MLflow): read them safely, check them against the config,
prove they score like the notebook did, and register them.

files.py: read a model file (LightGBM text, skops, pickle only when pinned) with its trusted types;
contract.py: the model's features and categories against the config, and a starting config;
parity.py: driftline's scores of a sample against the notebook's; mlflow_source.py: MLflow URIs;
importer.py: `driftline import-model`; promotion.py: the imported candidate judged like a retrained one.

handoff/ sits above the domain packages and only imports downward. What scoring, the registry and
retraining need of an imported model lives with them: scoring/sklearn_model.py (score and explain a
scikit-learn model), registry/model_objects.py (artifact bytes -> model object, trusted types),
registry/mlflow_mirror.py (candidates and the champion alias mirrored into MLflow),
retraining/recipe.py (a candidate trained the way the champion was).
"""

from driftline.handoff.files import ModelFile, read_model_file
from driftline.registry.model_objects import UntrustedModel

__all__ = ["ModelFile", "UntrustedModel", "read_model_file"]
