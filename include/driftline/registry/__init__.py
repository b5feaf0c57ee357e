"""Model registry: LightGBM text artifacts + JSON manifest on disk, versions and aliases in Postgres.

A version is only loaded after two hashes match the registry row: the sha256 of the model text, and
the scoring hash over every manifest field scoring depends on (feature order, categories, score
reference, task), so a tampered artifact and a tampered manifest are refused alike.

Every alias change is a compare-and-swap under the registry lock: a promotion names the champion it
was validated against and a rollback the champion it replaces; when the champion moved meanwhile,
the promotion is recorded as a reject and the rollback changes nothing (RollbackConflict).

Artifacts are written to a hidden staging folder and renamed into place only after their row
commits; a staging folder left by a crash is removed (or finished) by the next registration.

Compiled-model objects (scoring/compiled.py) are hash-checked the same way: compiled_objects keeps
the sha256 of each object when it is built, and a cache file that does not match is never loaded.

artifacts.py: files, hashes, staging; compiled_objects.py: the compiled objects' hashes; versions.py: registration, loading, aliases, queries;
decisions.py: promote / reject / rollback.
"""

from driftline.registry.artifacts import (
    MANIFEST_FILE,
    MODEL_FILE,
    OPTIONAL_SCORING_FIELDS,
    SCORING_FIELDS,
    artifact_bytes,
    artifact_path,
    scoring_digest,
    sha256_bytes,
    write_artifact,
)
from driftline.registry.compiled_objects import CompiledHashes
from driftline.registry.decisions import (
    UNCHECKED,
    Outcome,
    RollbackConflict,
    promote,
    promotion_history,
    reject,
    rollback,
    shared_holdout_at_promotion,
)
from driftline.registry.versions import (
    CHAMPION,
    PREVIOUS,
    LoadedModel,
    ModelLoadError,
    RegistryError,
    champion_version,
    fallback_versions,
    latest_unpromoted_version,
    list_versions,
    load_model,
    previous_version,
    prune_versions,
    register_candidate,
    register_champion,
    version_for_interval,
)

__all__ = [
    "CHAMPION",
    "MANIFEST_FILE",
    "MODEL_FILE",
    "OPTIONAL_SCORING_FIELDS",
    "PREVIOUS",
    "SCORING_FIELDS",
    "UNCHECKED",
    "CompiledHashes",
    "LoadedModel",
    "ModelLoadError",
    "Outcome",
    "RegistryError",
    "RollbackConflict",
    "artifact_bytes",
    "artifact_path",
    "champion_version",
    "fallback_versions",
    "latest_unpromoted_version",
    "list_versions",
    "load_model",
    "previous_version",
    "promote",
    "promotion_history",
    "prune_versions",
    "register_candidate",
    "register_champion",
    "reject",
    "rollback",
    "scoring_digest",
    "sha256_bytes",
    "shared_holdout_at_promotion",
    "version_for_interval",
    "write_artifact",
]
