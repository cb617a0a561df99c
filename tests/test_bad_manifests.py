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

import re
import shutil
from pathlib import Path

import pytest

from dltplus_dagster.project.errors import ProjectError
from dltplus_dagster.project.project import load_project
from dltplus_dagster.project.validate import validate_project

BAD_DIR = Path(__file__).parent / "bad_manifests"
MANIFESTS = sorted(BAD_DIR.glob("*.yml"))
_HEADER = re.compile(r"^#\s*(expect|key|line|file|profile|env):\s?(.*)$")
_ENV_REF = re.compile(r"\{env\.([A-Za-z0-9_]+)\}")


def _headers(path: Path) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _HEADER.match(line)
        if not m:
            break
        headers[m.group(1)] = m.group(2).strip()
    return headers


def load_and_validate(project_dir: Path, profile: str | None) -> None:
    """Load the project and check its references; any problem raises a ProjectError."""
    project = load_project(str(project_dir), profile)
    problems = validate_project(project)
    if problems:
        raise ProjectError("\n".join(problems))


def test_there_are_enough_bad_manifests() -> None:
    assert len(MANIFESTS) >= 30
    for path in MANIFESTS:
        headers = _headers(path)
        assert "expect" in headers and "key" in headers, path.name


@pytest.mark.parametrize("manifest", MANIFESTS, ids=[p.stem for p in MANIFESTS])
def test_bad_manifest(manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    headers = _headers(manifest)
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(manifest, root / "dlt.yml")
    shutil.copytree(BAD_DIR / "includes", root / "includes")

    text = manifest.read_text(encoding="utf-8")
    for name in _ENV_REF.findall(text) + _ENV_REF.findall(
        "".join(p.read_text() for p in (BAD_DIR / "includes").rglob("*.yml"))
    ):
        monkeypatch.delenv(name, raising=False)
    env = headers.get("env", "none")
    if env != "none":
        for pair in env.split(","):
            name, _, value = pair.strip().partition("=")
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
