"""Test helpers: small dlt projects in tmp dirs, copies of the example project, the bad
manifest corpus, and server processes (a free port, a process group started and stopped)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "shop_project" / "shop_project"
BIN = Path(sys.executable).parent  # the virtualenv's console scripts
PROJECT_ENV_VARS = ("DLT_PROJECT_DIR", "WORKSPACE__PROFILE")  # select the project and profile


def clean_env(**extra: str) -> dict[str, str]:
    """The process env without project or profile selection (`PROJECT_ENV_VARS`), plus `extra`:
    for subprocesses."""
    env = {k: v for k, v in os.environ.items() if k not in PROJECT_ENV_VARS}
    env.update(extra)
    return env


def make_project(tmp_path: Path, yml: str, files: dict[str, str] | None = None) -> Path:
    """Write `dlt.yml` (dedented) and `files` (relative path -> text) under `tmp_path/project`.

    Python packages `sources/` and `transformations/` (also below a code dir, as
    `code/sources/`) get an `__init__.py` when files are written into them. Returns the
    project dir.
    """
    root = Path(tmp_path) / "project"
    root.mkdir(parents=True, exist_ok=True)
    (root / "dlt.yml").write_text(textwrap.dedent(yml).lstrip("\n"), encoding="utf-8")
    for rel, text in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        parts = Path(rel).parts
        for i, part in enumerate(parts[:-1]):
            # a regular package (not a namespace one, which another project's regular
            # `sources` package further down sys.path would shadow)
            if part in ("sources", "transformations"):
                init = root.joinpath(*parts[: i + 1], "__init__.py")
                if not init.exists():
                    init.write_text("", encoding="utf-8")
    return root


def write(path: Path | str, text: str) -> Path:
    """Write dedented `text` to `path`, creating parent dirs."""
    path = Path(path)
    os.makedirs(path.parent, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


ITEMS_SOURCE = '''
import dlt


@dlt.source
def items(n_items: int = dlt.config.value, api_key: str = dlt.secrets.value):
    """`n_items` rows; the api key must be set."""

    @dlt.resource(primary_key="id", write_disposition="replace")
    def item_rows():
        yield [{"id": i, "value": f"v{i}"} for i in range(n_items)]

    @dlt.resource(write_disposition="append")
    def events():
        for i in range(n_items):
            yield {"event_id": i, "kind": "e"}

    return [item_rows, events]
'''
"""`sources/items.py`: source `items` with config `n_items` and secret `api_key`."""


# --- the example project ---------------------------------------------------------------------


def copy_example(dest: Path) -> Path:
    """A fresh copy of the example project: no local data, no table cache, no pin file."""
    return Path(
        shutil.copytree(
            EXAMPLE,
            dest,
            ignore=shutil.ignore_patterns(
                "_data", ".dltplus_state.json", "profile-name", "__pycache__"
            ),
        )
    )


# runs launched from a webserver start at once, without a daemon
NO_DAEMON_DAGSTER_YAML = """\
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
telemetry:
  enabled: false
nux:
  enabled: false
"""


def no_daemon_dagster_home(home: Path) -> Path:
    """A DAGSTER_HOME (local storage) whose runs launch at once, without a daemon."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(NO_DAEMON_DAGSTER_YAML, encoding="utf-8")
    return home


# --- the bad manifest corpus (tests/bad_manifests) ----------------------------------------------

BAD_DIR = Path(__file__).parent / "bad_manifests"
MANIFESTS = sorted(BAD_DIR.glob("*.yml"))
_HEADER = re.compile(r"^#\s*(expect|key|line|file|profile|env):\s?(.*)$")
_ENV_REF = re.compile(r"\{env\.([A-Za-z0-9_]+)\}")


def manifest_headers(path: Path) -> dict[str, str]:
    """The leading `# name: value` header comments of a bad manifest."""
    headers: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _HEADER.match(line)
        if not m:
            break
        headers[m.group(1)] = m.group(2).strip()
    return headers


def manifest_env(path: Path, headers: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """Env vars to unset (every `{env.X}` of the manifest and includes) and to set (`# env:`)."""
    texts = [path.read_text(encoding="utf-8")]
    texts += [p.read_text(encoding="utf-8") for p in (BAD_DIR / "includes").rglob("*.yml")]
    unset = sorted({name for text in texts for name in _ENV_REF.findall(text)})
    set_: dict[str, str] = {}
    if headers.get("env", "none") != "none":
        for pair in headers["env"].split(","):
            name, _, value = pair.strip().partition("=")
            set_[name] = value
    return unset, set_


def bad_project(root: Path, manifest: Path) -> Path:
    """A project at `root` whose `dlt.yml` is `manifest`, with the corpus' `includes/`."""
    root.mkdir(parents=True)
    shutil.copy(manifest, root / "dlt.yml")
    shutil.copytree(BAD_DIR / "includes", root / "includes")
    return root


# --- server processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_group(proc: subprocess.Popen, timeout: float = 20) -> None:
    """Stop a process started with `start_new_session=True` and everything in its group:
    SIGTERM, then SIGKILL after `timeout` s."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


@contextmanager
def server_process(
    cmd: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log_path: Path,
    ready: Callable[[], bool],
    timeout: float = 90,
    what: str = "server",
) -> Iterator[subprocess.Popen]:
    """`cmd` in its own process group (its children share it), output to `log_path`; yields
    once `ready()` is true (exceptions count as not ready: OSError, ValueError), fails when it
    exits or takes longer than `timeout` s; stops the whole group on exit."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            tail = log_path.read_text(errors="replace")[-4000:]
            assert proc.poll() is None, f"{what} exited ({proc.returncode}):\n{tail}"
            try:
                if ready():
                    break
            except (OSError, ValueError):
                pass
            assert time.monotonic() < deadline, f"{what} not ready in {timeout}s:\n{tail}"
            time.sleep(0.5)
        yield proc
    finally:
        stop_group(proc)


@contextmanager
def webserver(
    definitions: Path | str, *, port: int, env: dict[str, str], cwd: Path, log_path: Path,
    ready: Callable[[], bool], timeout: float = 90,
) -> Iterator[subprocess.Popen]:
    """`dagster-webserver -f definitions` on 127.0.0.1:`port` (see `server_process`)."""
    cmd = [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port),
           "-f", str(definitions)]
    with server_process(
        cmd, env=env, cwd=cwd, log_path=log_path, ready=ready, timeout=timeout,
        what="dagster-webserver",
    ) as proc:
        yield proc
