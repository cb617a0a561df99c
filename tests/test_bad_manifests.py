"""Every broken manifest in `bad_manifests/` fails with a located ProjectError, never a traceback.

Each file is copied to a fresh project as `dlt.yml` (with `bad_manifests/includes/` next to it),
loaded with `load_project` and checked with `validate_project`. Header comments say what to
expect:

    # expect: <substring of the error>      (required)
    # key: <key path> | none                (required; `none` where no key applies)
    # line: <line number>                   (where YAML has one)
    # file: <file the error points at>      (default dlt.yml)
    # profile: <profile to load>            (default: the default profile)
    # env: none | NAME=value[, NAME=value]  (env vars set for the load; default none)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import MANIFESTS, bad_project, manifest_env, manifest_headers

from dltplus_dagster.project.errors import ProjectError
from dltplus_dagster.project.project import load_project
from dltplus_dagster.project.validate import validate_project


def load_and_validate(project_dir: Path, profile: str | None) -> None:
    """Load the project and check its references; any problem raises a ProjectError."""
    project = load_project(str(project_dir), profile)
    problems = validate_project(project)
    if problems:
        raise ProjectError("\n".join(problems))


def test_there_are_enough_bad_manifests() -> None:
    assert len(MANIFESTS) >= 30
    for path in MANIFESTS:
        headers = manifest_headers(path)
        assert "expect" in headers and "key" in headers, path.name


@pytest.mark.parametrize("manifest", MANIFESTS, ids=[p.stem for p in MANIFESTS])
def test_bad_manifest(manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    headers = manifest_headers(manifest)
    root = bad_project(tmp_path / "project", manifest)

    unset, set_env = manifest_env(manifest, headers)
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    for name, value in set_env.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(Exception) as exc:
        load_and_validate(root, headers.get("profile"))

    err = exc.value
    message = str(err)
    assert isinstance(err, ProjectError), f"{type(err).__name__} is no ProjectError: {message}"
    assert "Traceback" not in message
    assert headers["expect"] in message, message
    expected_file = headers.get("file", "dlt.yml")
    assert expected_file in message, message
    if "line" in headers:
        assert f"{expected_file}:{headers['line']}" in message, message
    if headers["key"] != "none":
        key = headers["key"]
        assert f": {key}:" in message, message
