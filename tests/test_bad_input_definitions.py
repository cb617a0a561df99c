"""Every broken manifest fails Dagster definitions and `dltplus project validate` clearly.

For each file of `tests/bad_manifests/*.yml` (headers: see `tests/test_bad_manifests.py`;
`# expect:` a substring of the error, `# key:` the key path or `none`, `# line:`, `# file:`,
`# profile:`, `# env:`), a fresh project gets the file as `dlt.yml` (with `includes/` next to
it). Then

- `dltplus_dagster.build_definitions(project_dir, profile)` raises one `ProjectError` whose
  message names the file, the line (where YAML has one) and the key, and holds the expected
  text: what the Dagster code location shows when it fails to load;
- `dltplus project --project DIR [--profile P] validate` exits 1 with that same problem on
  stderr, and no traceback.

The CLI runs as the real console script, all manifests in parallel (each start imports dlt).
Also: YAML is read safely, a `!!python/object/apply:os.system` tag runs nothing.

    .venv/bin/pytest tests/test_bad_input_definitions.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import (
    BAD_DIR,
    MANIFESTS,
    bad_project,
    clean_env,
    manifest_env,
    manifest_headers,
)

from dltplus_dagster.project.errors import ProjectError

DLTPLUS = Path(sys.executable).parent / "dltplus"


@dataclass
class Case:
    manifest: Path
    headers: dict[str, str]
    project_dir: Path
    unset: list[str]
    set_env: dict[str, str]
    cli: subprocess.CompletedProcess[str] | None = None


def run_validate(case: Case) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in clean_env().items() if k not in case.unset}
    env.update(case.set_env)
    profile = case.headers.get("profile")
    cmd = [str(DLTPLUS), "project", "--project", str(case.project_dir)]
    cmd += ["--profile", profile] if profile else []
    return subprocess.run(
        [*cmd, "validate"], capture_output=True, text=True, env=env, timeout=120, check=False,
        cwd=case.project_dir.parent,
    )


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    """A project per bad manifest, each already validated by the CLI (in parallel)."""
    assert DLTPLUS.exists(), f"the `dltplus` console script is missing: {DLTPLUS}"
    base = tmp_path_factory.mktemp("bad_input")
    result: dict[str, Case] = {}
    for manifest in MANIFESTS:
        headers = manifest_headers(manifest)
        unset, set_env = manifest_env(manifest, headers)
        # a project per consumer: the CLI run must not leave state the Dagster load would see
        project_dir = bad_project(base / manifest.stem / "cli" / "project", manifest)
        result[manifest.stem] = Case(manifest, headers, project_dir, unset, set_env)
    with ThreadPoolExecutor(max_workers=max(2, (os.cpu_count() or 2) * 2)) as pool:
        for case, proc in zip(result.values(), pool.map(run_validate, result.values())):
            case.cli = proc
    return result


_NAMES_FILE = re.compile(r"[\w.-]+\.ya?ml\b")


def problems_of(message: str) -> list[str]:
    """The problems of a message: a "Found N problem(s) in ...:" list, or the message itself."""
    lines = message.strip().splitlines()
    if not lines or not re.match(r"^Found \d+ problem\(s\)", lines[0]):
        return [message.strip()]
    problems: list[str] = []
    for line in lines[1:]:
        if line.startswith("  - "):
            problems.append(line[4:])
        elif problems:
            problems[-1] += "\n" + line
    return problems


def check_message(message: str, headers: dict[str, str], where: str) -> None:
    """Every problem names its file; one of them holds the expected text with `file:line` and
    `: key:` (a manifest with two broken references may report both)."""
    assert "Traceback" not in message, f"{where}: a traceback instead of a message:\n{message}"
    problems = problems_of(message)
    assert problems and all(_NAMES_FILE.search(p) for p in problems), (
        f"{where}: a problem does not name its file:\n{message}"
    )
    expected_file = headers.get("file", "dlt.yml")
    located = f"{expected_file}:{headers['line']}" if "line" in headers else expected_file
    key = f": {headers['key']}:" if headers["key"] != "none" else ""
    matching = [p for p in problems if headers["expect"] in p and located in p and key in p]
    assert matching, (
        f"{where}: no problem holds {headers['expect']!r} at {located}"
        f"{' with key ' + headers['key'] if key else ''}:\n{message}"
    )


def test_the_corpus_is_there() -> None:
    assert len(MANIFESTS) >= 30, f"expected the bad manifest corpus in {BAD_DIR}"
    for path in MANIFESTS:
        assert "expect" in manifest_headers(path), f"{path.name} has no '# expect:' header"


@pytest.mark.parametrize("name", [p.stem for p in MANIFESTS])
def test_build_definitions_fails_clearly(
    name: str, cases: dict[str, Case], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dltplus_dagster import build_definitions

    case = cases[name]
    for var in case.unset:
        monkeypatch.delenv(var, raising=False)
    for var, value in case.set_env.items():
        monkeypatch.setenv(var, value)
    project_dir = bad_project(tmp_path / "project", case.manifest)

    with pytest.raises(Exception) as exc:  # the type is asserted below
        build_definitions(str(project_dir), case.headers.get("profile"))
    error = exc.value
    message = str(error)
    assert isinstance(error, ProjectError), (
        f"build_definitions raised {type(error).__module__}.{type(error).__name__}, not a "
        f"ProjectError: {message}"
    )
    check_message(message, case.headers, "build_definitions")


@pytest.mark.parametrize("name", [p.stem for p in MANIFESTS])
def test_cli_validate_fails_clearly(name: str, cases: dict[str, Case]) -> None:
    case = cases[name]
    proc = case.cli
    assert proc is not None
    where = f"`dltplus project validate` for {name}"
    assert proc.returncode == 1, (
        f"{where} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    )
    assert proc.stderr.strip(), f"{where}: nothing on stderr (stdout: {proc.stdout})"
    check_message(proc.stderr, case.headers, where)


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    """Python object tags run nothing, at definitions load or in the CLI; the error says why."""
    from dltplus_dagster import build_definitions

    marker = tmp_path / "pwned"
    project_dir = tmp_path / "project"
    project_dir.mkdir()
    (project_dir / "dlt.yml").write_text(
        "sources:\n"
        f"  evil: !!python/object/apply:os.system [\"touch {marker}\"]\n"
        "pipelines:\n"
        f"  p: {{source: evil, destination: !!python/object/apply:os.system [\"touch {marker}\"]}}\n"
    )
    with pytest.raises(ProjectError) as exc:
        build_definitions(str(project_dir))
    assert not marker.exists(), "loading dlt.yml ran os.system"
    message = str(exc.value)
    assert "dlt.yml:2: sources.evil:" in message, message
    assert "python/object/apply:os.system" in message and "is not allowed" in message, message

    proc = subprocess.run(
        [str(DLTPLUS), "project", "--project", str(project_dir), "validate"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert not marker.exists(), "`dltplus project validate` ran os.system"
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "dlt.yml:2: sources.evil:" in proc.stderr and "is not allowed" in proc.stderr, (
        proc.stderr
    )


@pytest.mark.parametrize("name", ["01_yaml_syntax", "45_job_unknown_pipeline"])
def test_dagster_code_location_shows_the_error(name: str, tmp_path: Path) -> None:
    """The repo's `definitions.py` on a broken project: Dagster's own validation (what the UI
    shows for a code location that failed to load) names the file, line and key."""
    manifest = BAD_DIR / f"{name}.yml"
    headers = manifest_headers(manifest)
    project_dir = bad_project(tmp_path / "project", manifest)
    env = clean_env(DLT_PROJECT_DIR=str(project_dir), DAGSTER_HOME=str(tmp_path))
    proc = subprocess.run(
        [str(DLTPLUS.parent / "dagster"), "definitions", "validate", "-f", "definitions.py"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "ProjectInvalid" in output or "ManifestError" in output, output
    line = next(
        (x for x in output.splitlines() if headers["expect"] in x and "dlt.yml" in x), None
    )
    assert line is not None, f"no line with {headers['expect']!r} and the file:\n{output}"
    assert f"dlt.yml:{headers['line']}" in line, line
    if headers["key"] != "none":
        assert f": {headers['key']}:" in line, line
