"""The example project built as a wheel, installed into a fresh virtualenv, used from elsewhere.

The fresh venv sees the main venv's packages (dlt, dagster, dltplus_dagster) through a `.pth`
file that runs `site.addsitedir`, so nothing is downloaded; the project package itself is a
real, non-editable wheel install into the new venv's site-packages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DIST = REPO / "examples" / "shop_project"

CONSUMER = textwrap.dedent(
    """
    import json, os
    import shop_project

    project = shop_project.project()
    result = shop_project.runner().run_pipeline("shop_pipeline")
    counts = shop_project.catalog().dataset("shop_raw").row_counts()
    print(json.dumps({
        "name": project.name,
        "profile": project.current_profile,
        "project_dir": project.project_dir,
        "module_file": shop_project.__file__,
        "data_dir": project.data_dir,
        "loaded": result.row_counts,
        "counts": dict(counts),
    }))
    """
)


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{cmd}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _site_packages(venv: Path) -> Path:
    python = venv / "bin" / "python"
    out = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=venv
    )
    return Path(out.strip())


@pytest.fixture(scope="module")
def installed_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the example project installed from a wheel."""
    base = tmp_path_factory.mktemp("packaging")
    src = Path(
        shutil.copytree(
            EXAMPLE_DIST,
            base / "src",
            ignore=shutil.ignore_patterns(
                "_data", "build", "*.egg-info", "profile-name", "__pycache__"
            ),
        )
    )
    dist = base / "dist"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(dist),
            str(src),
        ],
        cwd=base,
    )
    wheels = list(dist.glob("shop_project-*.whl"))
    assert len(wheels) == 1, wheels

    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=base)
    main_site = sysconfig.get_paths()["purelib"]
    (_site_packages(venv) / "_main_venv.pth").write_text(
        f"import site; site.addsitedir({main_site!r})\n"
    )
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--no-deps",
            "--quiet",
            str(wheels[0]),
        ],
        cwd=base,
    )
    return venv


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DLT_PROJECT_DIR", "WORKSPACE__PROFILE", "PYTHONPATH", "VIRTUAL_ENV")
    }
    env.update(extra)
    return env


def test_installed_package_runs_and_reads(installed_venv: Path, tmp_path: Path) -> None:
    python = str(installed_venv / "bin" / "python")
    script = tmp_path / "consumer.py"
    script.write_text(CONSUMER)
    out = _run([python, str(script)], cwd=tmp_path, env=_env(WORKSPACE__PROFILE="tests"))
    info = json.loads(out.strip().splitlines()[-1])

    site = str(_site_packages(installed_venv))
    assert info["module_file"].startswith(site)  # the wheel install, not the repo's example
    assert info["project_dir"] == os.path.join(site, "shop_project")
    assert info["name"] == "shop_analytics"
    assert info["profile"] == "tests"
    assert info["data_dir"] == os.path.join(site, "shop_project", "_data", "tests")
    assert info["loaded"] == {"customers": 10, "products": 20, "orders": 40}
    assert info["counts"] == {"customers": 10, "products": 20, "orders": 40}


def test_project_list_shows_installed_package(installed_venv: Path, tmp_path: Path) -> None:
    python = str(installed_venv / "bin" / "python")
    out = _run([python, "-m", "dltplus_dagster.cli", "project", "list"], cwd=tmp_path, env=_env())
    assert "Found 1 dlt package(s):" in out
    assert (
        "shop-project (shop_project): Shop analytics: orders, customers and products from "
        "the shop API, stores from CSV files."
    ) in out


def test_cli_on_installed_package_by_name(installed_venv: Path, tmp_path: Path) -> None:
    python = str(installed_venv / "bin" / "python")
    cli = [python, "-m", "dltplus_dagster.cli", "--project", "shop_project"]
    listed = _run([*cli, "pipeline", "list"], cwd=tmp_path, env=_env())
    assert "* shop_pipeline: shop to warehouse" in listed
    info = _run([*cli, "project", "info", "--profile", "tests"], cwd=tmp_path, env=_env())
    assert os.path.join(str(_site_packages(installed_venv)), "shop_project") in info
