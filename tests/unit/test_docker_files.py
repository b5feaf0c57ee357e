"""The image and the compose file as far as a machine without a Docker engine can check them (the docs'
`docker compose` blocks are marked not-run and point here): the compose file parses, every variable
it needs without a default is in .env.example, the image installs the extras the docs promise, and,
where the docker-compose client is installed, `docker-compose config` accepts the project."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest
import yaml

from tests.helpers import REPO

# The extras the image must carry: CeleryExecutor workers (operate/scaling.md), object storage inputs
# (configure/input.md), OpenLineage events (operate/lineage.md).
IMAGE_EXTRAS = {"celery", "s3", "lineage"}


def compose_variables() -> dict[str, bool]:
    """{variable: has a default} of the compose file's interpolations (`$${...}` is a literal `$`)."""
    text = "\n".join(
        line for line in (REPO / "docker-compose.yml").read_text().splitlines() if not line.lstrip().startswith("#")
    )
    found: dict[str, bool] = {}
    for name, modifier in re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?][^}]*)?\}", text):
        found[name] = found.get(name, False) or modifier.lstrip(":").startswith("-")
    return found


def test_the_compose_file_parses_and_env_example_names_every_variable_without_a_default():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert {"postgres", "airflow-init", "airflow-apiserver", "airflow-scheduler"} <= set(compose["services"])
    example = {
        line.split("=", 1)[0].strip()
        for line in (REPO / ".env.example").read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    needed = {name for name, has_default in compose_variables().items() if not has_default}
    assert needed and not needed - example, needed - example


def test_the_image_installs_the_extras_the_docs_promise():
    dockerfile = (REPO / "Dockerfile").read_text()
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    installs = re.findall(r"driftline(?:-\*\.whl\))?\[([a-z0-9,]+)\]", dockerfile)
    assert len(installs) == 2, installs  # the builder's wheels and the final install
    for listed in installs:
        assert set(listed.split(",")) == IMAGE_EXTRAS and IMAGE_EXTRAS <= extras, listed


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="the docker-compose client is not installed")
def test_docker_compose_config_accepts_the_project(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text((REPO / ".env.example").read_text())
    for profile in ([], ["--profile", "celery"]):
        done = subprocess.run(
            ["docker-compose", "--project-directory", str(REPO), "--env-file", str(env_file), *profile, "config", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr[-2000:]
