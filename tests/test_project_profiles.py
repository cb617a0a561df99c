"""Profiles: implicit and declared ones, selection order, deep merge, secrets and data dirs."""

from __future__ import annotations

from pathlib import Path

import dlt
import pytest
from helpers import ITEMS_SOURCE, make_project, write

from dltplus_dagster import current
from dltplus_dagster.project import run_context
from dltplus_dagster.project.errors import ManifestError, ProfileNotFound, ProjectError
from dltplus_dagster.project.profiles import deep_merge, write_pin
from dltplus_dagster.project.project import load_project
from dltplus_dagster.project.run_context import ProjectRunContext, switch_profile

MERGE_YML = """
project:
  name: merged
sources:
  items:
    n_items: 5
    options: {a: 1, b: 2, deep: {x: 1, y: 2}}
    tags: [one, two, three]
    mode: full
    description: base
pipelines:
  p:
    source: items
    destination: duckdb
    dataset_name: raw
    resources: [item_rows, events]
profiles:
  tests:
    sources:
      items:
        n_items: 2
        options: {b: 20, deep: {y: 22}, c: 3}
        tags: [only]
        description: null
      added: {type: items.items}
    pipelines:
      p:
        resources: [item_rows]
  prod:
  staging: {}
"""


# --- which profiles exist -------------------------------------------------------------------


def test_implicit_and_declared_profiles(tmp_path: Path) -> None:
    root = make_project(tmp_path, MERGE_YML)
    project = load_project(str(root))
    assert project.profiles == ["access", "dev", "prod", "staging", "tests"]
    assert project.current_profile == "dev" and project.default_profile == "dev"
    for name in ("dev", "tests", "access", "prod", "staging"):
        assert load_project(str(root), profile=name).current_profile == name


def test_implicit_profiles_without_a_profiles_section(tmp_path: Path) -> None:
    root = make_project(tmp_path, "project: {name: x}\n")
    assert load_project(str(root)).profiles == ["access", "dev", "tests"]
    with pytest.raises(ProfileNotFound) as exc:
        load_project(str(root), profile="prod")
    assert "prod" in str(exc.value)
    assert "access, dev, tests" in str(exc.value)


def test_default_profile_setting(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        "project:\n  default_profile: staging\nprofiles:\n  staging:\n    runtime: {log_level: INFO}\n",
    )
    project = load_project(str(root))
    assert project.current_profile == "staging"
    assert project.default_profile == "staging"
    assert project.resolved["runtime"] == {"log_level": "INFO"}
    assert "dev" not in project.profiles  # dev is implicit only as the default profile
    with pytest.raises(ProfileNotFound):
        load_project(str(root), profile="dev")


def test_default_profile_not_declared_is_implicit(tmp_path: Path) -> None:
    root = make_project(tmp_path, "project:\n  default_profile: local\n")
    project = load_project(str(root))
    assert project.current_profile == "local"
    assert project.data_dir == str(root / "_data" / "local")


def test_unknown_profile_error(tmp_path: Path) -> None:
    root = make_project(tmp_path, MERGE_YML)
    with pytest.raises(ProfileNotFound) as exc:
        load_project(str(root), profile="qa")
    err = exc.value
    assert isinstance(err, ProjectError) and isinstance(err, KeyError)
    assert "'qa'" in str(err)
    assert "access, dev, prod, staging, tests" in str(err)
    assert err.available == ["access", "dev", "prod", "staging", "tests"]


# --- selection order ------------------------------------------------------------------------


def test_selection_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(tmp_path, MERGE_YML)
    project = load_project(str(root))
    assert (project.current_profile, project.profile_source) == ("dev", "default")

    write_pin(str(root), "staging")
    assert (root / ".dlt" / "profile-name").read_text().strip() == "staging"
    project = load_project(str(root))
    assert project.current_profile == "staging"
    assert "pin file" in project.profile_source

    monkeypatch.setenv("WORKSPACE__PROFILE", "prod")
    project = load_project(str(root))
    assert project.current_profile == "prod"
    assert "WORKSPACE__PROFILE" in project.profile_source

    project = load_project(str(root), profile="tests")
    assert (project.current_profile, project.profile_source) == ("tests", "explicit")


def test_pin_file_first_line_stripped(tmp_path: Path) -> None:
    root = make_project(tmp_path, MERGE_YML)
    write(root / ".dlt" / "profile-name", "  tests  \nprod\n")
    assert load_project(str(root)).current_profile == "tests"
    write(root / ".dlt" / "profile-name", "\n")
    assert load_project(str(root)).current_profile == "dev"


def test_pinned_unknown_profile_fails_on_load(tmp_path: Path) -> None:
    root = make_project(tmp_path, MERGE_YML)
    write_pin(str(root), "nonsense")
    with pytest.raises(ProfileNotFound, match="nonsense"):
        load_project(str(root))


def test_env_var_profile_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(tmp_path, MERGE_YML)
    monkeypatch.setenv("WORKSPACE__PROFILE", "nonsense")
    with pytest.raises(ProfileNotFound, match="nonsense"):
        current.project(str(root))


def test_active_project_follows_env_and_pin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(tmp_path, MERGE_YML)
    monkeypatch.chdir(root)
    assert current.project().current_profile == "dev"
    write_pin(str(root), "staging")
    assert current.project().current_profile == "staging"
    monkeypatch.setenv("WORKSPACE__PROFILE", "tests")
    assert current.project().current_profile == "tests"
    monkeypatch.delenv("WORKSPACE__PROFILE")
    (root / ".dlt" / "profile-name").unlink()
    assert current.project().current_profile == "dev"


# --- deep merge -----------------------------------------------------------------------------


def test_deep_merge_rules(tmp_path: Path) -> None:
    root = make_project(tmp_path, MERGE_YML)
    dev = load_project(str(root))
    tests = load_project(str(root), profile="tests")

    base_cfg = dev.sources["items"].config
    cfg = tests.sources["items"].config
    assert cfg["n_items"] == 2  # scalar replaced
    assert cfg["options"] == {"a": 1, "b": 20, "c": 3, "deep": {"x": 1, "y": 22}}  # merged
    assert cfg["tags"] == ["only"]  # list replaced, not appended
    assert "description" in cfg and cfg["description"] is None  # null overrides, key stays
    assert cfg["mode"] == "full"  # untouched
    assert "added" in tests.sources and "added" not in dev.sources  # profile adds entities
    assert tests.pipelines["p"].resources == ["item_rows"]
    assert tests.pipelines["p"].destination == "duckdb"
    # the base is not modified by merging
    assert base_cfg["options"] == {"a": 1, "b": 2, "deep": {"x": 1, "y": 2}}
    assert dev.pipelines["p"].resources == ["item_rows", "events"]
    # null and {} profile bodies mean no overrides
    assert load_project(str(root), profile="prod").sources["items"].config == base_cfg
    assert load_project(str(root), profile="staging").sources["items"].config == base_cfg


def test_deep_merge_function() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1, "e": {"f": 1}}
    overlay = {"a": {"c": [3]}, "d": None, "e": 5, "g": {"h": 1}}
    merged = deep_merge(base, overlay)
    assert merged == {"a": {"b": 1, "c": [3]}, "d": None, "e": 5, "g": {"h": 1}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1, "e": {"f": 1}}
    overlay["g"]["h"] = 2
    assert merged["g"]["h"] == 1  # no shared structure


def test_profile_project_keys(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        """
        project:
          allow_undefined_entities: true
        profiles:
          prod:
            project:
              allow_undefined_entities: false
              data_dir: "{project_dir}/prod_state"
              local_dir: "{data_dir}/files"
        """,
    )
    prod = load_project(str(root), profile="prod")
    assert prod.allow_undefined_entities is False
    assert prod.data_dir == str(root / "prod_state")
    assert prod.local_dir == str(root / "prod_state" / "files")
    assert load_project(str(root)).allow_undefined_entities is True


def test_profile_may_not_change_project_name(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        """
        project:
          name: stable
        profiles:
          prod:
            project:
              name: other
        """,
    )
    assert load_project(str(root)).name == "stable"  # only the selected profile is checked
    with pytest.raises(ManifestError) as exc:
        load_project(str(root), profile="prod")
    assert "dlt.yml:6: profiles.prod.project.name" in str(exc.value)
    assert "not allowed in a profile" in str(exc.value)


def test_profile_errors_point_into_the_profile(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        """
        pipelines:
          p: {source: items, destination: duckdb, dataset_name: raw}
        profiles:
          prod:
            pipelines:
              p:
                destination: [wrong]
        """,
    )
    load_project(str(root))
    with pytest.raises(ManifestError) as exc:
        load_project(str(root), profile="prod")
    assert exc.value.line == 7
    assert exc.value.key == "pipelines.p.destination"


def test_profile_body_must_be_a_mapping(tmp_path: Path) -> None:
    root = make_project(tmp_path, "profiles:\n  prod: [a]\n")
    with pytest.raises(ManifestError, match=r"dlt.yml:2: profiles.prod"):
        load_project(str(root), profile="prod")


def test_current_profile_placeholder_in_profile_body(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        """
        pipelines:
          p: {source: s, destination: duckdb, dataset_name: "raw_{current_profile}"}
        profiles:
          prod:
            pipelines:
              p: {dataset_name: "{name}_{current_profile}_{default_profile}"}
        """,
    )
    assert load_project(str(root), profile="tests").pipelines["p"].dataset_name == "raw_tests"
    assert load_project(str(root), profile="prod").pipelines["p"].dataset_name == "project_prod_dev"


# --- switching ------------------------------------------------------------------------------


def test_switch_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(tmp_path, MERGE_YML)
    monkeypatch.chdir(root)
    assert current.project().current_profile == "dev"
    ctx = switch_profile("tests")
    assert isinstance(ctx, ProjectRunContext)
    assert ctx.profile == "tests"
    assert ctx.data_dir == str(root / "_data" / "tests")
    assert current.project().current_profile == "tests"
    assert current.project().profile_source == "explicit"
    assert dlt.config["sources.items.n_items"] == 2
    assert dlt.current.run_context().profile == "tests"
    # an explicit switch beats the env var
    monkeypatch.setenv("WORKSPACE__PROFILE", "staging")
    assert current.project().current_profile == "tests"
    ctx2 = ctx.switch_profile("dev")
    assert ctx2 is not ctx and ctx2.profile == "dev"
    assert current.project().current_profile == "dev"
    assert dlt.config["sources.items.n_items"] == 5
    run_context.reset()
    assert current.project().current_profile == "staging"  # env var again


def test_switch_profile_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(tmp_path, MERGE_YML)
    monkeypatch.chdir(root)
    current.project()
    with pytest.raises(ProfileNotFound) as exc:
        switch_profile("qa")
    assert "access, dev, prod, staging, tests" in str(exc.value)
    assert current.project().current_profile == "dev"  # the active profile is unchanged


def test_switch_profile_with_project_dir(tmp_path: Path) -> None:
    root = make_project(tmp_path, MERGE_YML)
    ctx = switch_profile("staging", str(root))
    assert ctx.project.project_dir == str(root)
    assert ctx.available_profiles() == ["access", "dev", "prod", "staging", "tests"]


# --- secrets per profile --------------------------------------------------------------------


def test_profile_secrets_toml_loads_only_for_its_profile(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        "sources:\n  items: {n_items: 1}\n",
        {
            "sources/items.py": ITEMS_SOURCE,
            ".dlt/secrets.toml": '[sources.items]\napi_key = "shared-key"\n',
            ".dlt/tests.secrets.toml": '[sources.items]\napi_key = "tests-key"\n',
            ".dlt/prod.secrets.toml": '[sources.items]\napi_key = "prod-key"\n',
            ".dlt/config.toml": '[sources.items]\nregion = "eu"\n',
        },
    )
    switch_profile("dev", str(root))
    assert dlt.secrets["sources.items.api_key"] == "shared-key"
    assert dlt.config["sources.items.region"] == "eu"
    switch_profile("tests", str(root))
    assert dlt.secrets["sources.items.api_key"] == "tests-key"
    # the source resolves its secret from the profile's file
    source = current.entities().get_source("items")
    rows = list(source.resources["item_rows"])
    assert rows and rows[0]["id"] == 0
    switch_profile("dev", str(root))
    assert dlt.secrets["sources.items.api_key"] == "shared-key"


def test_toml_overrides_manifest_and_env_overrides_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(
        tmp_path,
        "sources:\n  items: {n_items: 1, region: manifest}\n",
        {".dlt/config.toml": '[sources.items]\nn_items = 2\n'},
    )
    current.project(str(root))
    assert dlt.config["sources.items.region"] == "manifest"
    assert dlt.config["sources.items.n_items"] == 2
    monkeypatch.setenv("SOURCES__ITEMS__N_ITEMS", "3")
    assert dlt.config["sources.items.n_items"] == 3


# --- data dirs ------------------------------------------------------------------------------

PIPE_YML = """
sources:
  items: {n_items: 3, api_key: k}
pipelines:
  p:
    source: items
    destination: duckdb
    dataset_name: raw
profiles:
  tests:
    sources:
      items: {n_items: 2}
"""


def test_each_profile_has_its_own_data(tmp_path: Path) -> None:
    root = make_project(tmp_path, PIPE_YML, {"sources/items.py": ITEMS_SOURCE})
    dev = current.runner(str(root), "dev").run_pipeline("p")
    assert dev.row_counts["item_rows"] == 3
    assert (root / "_data" / "dev" / "local" / "duckdb.duckdb").is_file()
    assert (root / "_data" / "dev" / "pipelines" / "p").is_dir()

    tests = current.runner(str(root), "tests").run_pipeline("p")
    assert tests.row_counts["item_rows"] == 2
    assert (root / "_data" / "tests" / "local" / "duckdb.duckdb").is_file()
    assert (root / "_data" / "tests" / "pipelines" / "p").is_dir()

    # tests never touched dev data, and each catalog reads its own file
    assert current.catalog(str(root), "dev").dataset("raw").row_counts()["item_rows"] == 3
    assert current.catalog(str(root), "tests").dataset("raw").row_counts()["item_rows"] == 2


def test_implicit_duckdb_pipeline_and_catalog_agree(tmp_path: Path) -> None:
    root = make_project(tmp_path, PIPE_YML, {"sources/items.py": ITEMS_SOURCE})
    switch_profile("tests", str(root))
    current.runner().run_pipeline("p")
    ds = current.catalog().dataset("raw")
    assert ds.destination_name == "duckdb"
    assert ds.row_counts() == {"item_rows": 2, "events": 2}
    files = sorted(p.name for p in (root / "_data" / "tests" / "local").iterdir())
    assert files == ["duckdb.duckdb"]  # one file, written and read


def test_plain_dlt_pipeline_uses_the_profile_data_dir(tmp_path: Path) -> None:
    root = make_project(tmp_path, PIPE_YML)
    switch_profile("tests", str(root))
    pipeline = dlt.pipeline("plain_pipe")
    assert pipeline.pipelines_dir == str(root / "_data" / "tests" / "pipelines")
    assert pipeline.working_dir.startswith(str(root / "_data" / "tests"))


def test_cached_project_follows_manifest_and_profile_selection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resources share one loaded project per process, reloaded when it would differ."""
    import os

    root = make_project(tmp_path, MERGE_YML)
    monkeypatch.delenv("WORKSPACE__PROFILE", raising=False)
    first = run_context.PROJECTS.get(str(root))
    assert run_context.PROJECTS.get(str(root)) is first
    assert first.current_profile == "dev"
    monkeypatch.setenv("WORKSPACE__PROFILE", "tests")  # the selection changed
    assert run_context.PROJECTS.get(str(root)).current_profile == "tests"
    assert run_context.PROJECTS.get(str(root), "prod").current_profile == "prod"
    before = run_context.PROJECTS.get(str(root), "prod")
    manifest = root / "dlt.yml"
    os.utime(manifest, (manifest.stat().st_atime, manifest.stat().st_mtime + 5))  # edited
    assert run_context.PROJECTS.get(str(root), "prod") is not before
