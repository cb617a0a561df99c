"""dlt.yml: discovery, sections, !include, placeholders, validation errors and the JSON Schema."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import dlt
import pytest
from helpers import ITEMS_SOURCE, make_project, write

from dltplus_dagster import current
from dltplus_dagster.project import model
from dltplus_dagster.project.errors import ManifestError, ProjectError, ProjectNotFound
from dltplus_dagster.project.project import find_project_dir, load_project

EXAMPLE_DIR = Path(__file__).resolve().parents[1] / "examples" / "shop_project" / "shop_project"

ALL_SECTIONS = """
project:
  name: full
  default_profile: dev
  allow_undefined_entities: true
sources:
  items:
    type: items.items
    with_args: {n_items: 3}
    page_size: 10
destinations:
  wh:
    type: duckdb
pipelines:
  load_items:
    source: items
    destination: wh
    dataset_name: raw
    progress: log
    schedule: "0 6 * * *"
    group: ingest
    tags: {team: data}
    run_config:
      retry_policy: {type: fixed, max_attempts: 2}
      retry_pipeline_steps: [extract, load]
      run_from_clean_folder: true
datasets:
  raw:
    destination: [wh]
    contract: {tables: evolve, columns: freeze}
    tables:
      item_rows: {checks: {not_empty: true, unique: [id]}}
transformations:
  summary:
    sql: {item_count: "SELECT count(*) AS n FROM item_rows"}
    inputs: [raw]
    output: reports
runtime:
  log_level: WARNING
dagster:
  asset_key_prefix: [lake]
  default_group: everything
  jobs:
    nightly: {pipelines: [load_items], transformations: [summary]}
  schedules:
    nightly_at_2: {job: nightly, cron: "0 2 * * *"}
profiles:
  tests:
    sources:
      items: {page_size: 1}
"""


# --- discovery ------------------------------------------------------------------------------


def test_find_project_from_cwd_upward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(tmp_path, "project: {name: found}\n")
    deep = root / "a" / "b" / "c"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_project_dir() == str(root)
    assert load_project().name == "found"
    assert current.project().project_dir == str(root)


def test_nearest_project_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outer = make_project(tmp_path, "project: {name: outer}\n")
    inner = outer / "nested"
    write(inner / "dlt.yml", "project: {name: inner}\n")
    monkeypatch.chdir(inner)
    assert load_project().name == "inner"


def test_dlt_project_dir_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(tmp_path, "project: {name: from_env}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("DLT_PROJECT_DIR", str(root))
    assert find_project_dir() == str(root)
    assert current.project().name == "from_env"


def test_no_project_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ProjectNotFound) as exc:
        find_project_dir()
    assert str(tmp_path) in str(exc.value)
    assert "DLT_PROJECT_DIR" in str(exc.value)
    monkeypatch.setenv("DLT_PROJECT_DIR", str(tmp_path / "nope"))
    with pytest.raises(ProjectNotFound) as exc:
        find_project_dir()
    assert "nope" in str(exc.value)


def test_project_dir_setting_overrides(tmp_path: Path) -> None:
    """`project.project_dir` moves the code root (sources import from there) and data dirs."""
    root = make_project(
        tmp_path,
        """
        project:
          name: moved
          project_dir: code
        sources:
          items: {n_items: 2, api_key: k}
        """,
        {"code/sources/items.py": ITEMS_SOURCE},
    )
    project = load_project(str(root))
    assert project.project_dir == str(root / "code")
    assert project.data_dir == str(root / "code" / "_data" / "dev")
    assert project.manifest_path == str(root / "dlt.yml")
    source = current.entities(str(root)).get_source("items")
    assert sorted(source.resources) == ["events", "item_rows"]


# --- sections -------------------------------------------------------------------------------


def test_all_sections_load(tmp_path: Path) -> None:
    root = make_project(tmp_path, ALL_SECTIONS)
    project = load_project(str(root))
    assert project.name == "full"
    assert project.sources["items"].type == "items.items"
    assert project.sources["items"].with_args == {"n_items": 3}
    assert project.sources["items"].config == {"page_size": 10}
    assert project.destinations["wh"].type == "duckdb"
    pipe = project.pipelines["load_items"]
    assert (pipe.source, pipe.destination, pipe.dataset_name) == ("items", "wh", "raw")
    assert pipe.run_config.retry_policy.type == "fixed"
    assert pipe.run_config.retry_policy.max_attempts == 2
    assert pipe.run_config.retry_pipeline_steps == ["extract", "load"]
    assert pipe.run_config.run_from_clean_folder is True
    assert pipe.tags == {"team": "data"}
    ds = project.datasets["raw"]
    assert ds.destination == ["wh"]
    assert isinstance(ds.contract, model.ContractSpec) and ds.contract.columns == "freeze"
    assert ds.tables["item_rows"].checks.unique == ["id"]
    assert project.transformations["summary"].output_tables() == ["item_count"]
    assert project.manifest.runtime == {"log_level": "WARNING"}
    assert project.dagster.asset_key_prefix == ["lake"]
    assert project.dagster.jobs["nightly"].pipelines == ["load_items"]
    assert project.dagster.schedules["nightly_at_2"].cron == "0 2 * * *"
    assert "tests" in project.profiles


def test_defaults_of_an_empty_manifest(tmp_path: Path) -> None:
    root = make_project(tmp_path, "")
    project = load_project(str(root))
    assert project.name == "project"  # basename of the project dir
    assert project.current_profile == "dev" and project.default_profile == "dev"
    assert project.allow_undefined_entities is True
    assert project.data_dir == str(root / "_data" / "dev")
    assert project.local_dir == str(root / "_data" / "dev" / "local")
    assert project.pipelines == {} and project.sources == {}


def test_null_entities_are_entities(tmp_path: Path) -> None:
    root = make_project(tmp_path, "sources:\n  items:\ndestinations:\n  wh:\n")
    project = load_project(str(root))
    assert project.sources["items"].name == "items" and project.sources["items"].type is None
    assert project.destinations["wh"].name == "wh"


def test_unknown_top_level_key_is_dlt_config_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_project(
        tmp_path,
        """
        project: {name: extra}
        my_settings:
          answer: 42
        normalize:
          workers: 3
        """,
    )
    with caplog.at_level(logging.WARNING):
        current.project(str(root))
    assert "my_settings" in caplog.text and "normalize" in caplog.text
    assert dlt.config["my_settings.answer"] == 42
    assert dlt.config["normalize.workers"] == 3


def test_runtime_section_is_dlt_config(tmp_path: Path) -> None:
    root = make_project(tmp_path, "runtime:\n  log_level: ERROR\n")
    current.project(str(root))
    assert dlt.config["runtime.log_level"] == "ERROR"


def test_yaml_anchors_and_merge_keys(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        """
        x-base: &base
          destination: duckdb
          dataset_name: shared
        pipelines:
          a:
            <<: *base
            source: one
          b:
            <<: *base
            source: two
            dataset_name: own
        """,
    )
    project = load_project(str(root))
    assert project.pipelines["a"].dataset_name == "shared"
    assert project.pipelines["b"].dataset_name == "own"
    assert project.pipelines["b"].destination == "duckdb"


def test_merge_key_override_errors_point_at_the_override(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        """
        x-base: &base
          destination: duckdb
        pipelines:
          a:
            <<: *base
            destination: [not, a, string]
        """,
    )
    with pytest.raises(ManifestError) as exc:
        load_project(str(root))
    assert exc.value.key == "pipelines.a.destination" and exc.value.line == 6


def test_duplicate_key_next_to_merge_key_is_still_an_error(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        """
        x-base: &base {destination: duckdb}
        pipelines:
          a:
            <<: *base
            source: one
            source: two
        """,
    )
    with pytest.raises(ManifestError, match=r"dlt.yml:6: pipelines.a.source: duplicate key"):
        load_project(str(root))


# --- wrong types and syntax -----------------------------------------------------------------


@pytest.mark.parametrize(
    "yml, key, line, words",
    [
        ("pipelines:\n  p:\n    source: 5\n", "pipelines.p.source", 3, "expected a string"),
        (
            "pipelines:\n  p:\n    destination: [a, b]\n",
            "pipelines.p.destination",
            3,
            "expected a string",
        ),
        ("datasets:\n  d:\n    destination: wh\n", "datasets.d.destination", 3, "expected a list"),
        ("datasets:\n  d:\n    contract: sometimes\n", "datasets.d.contract", 3, "one of 'evolve'"),
        ("sources: [a, b]\n", "sources", 1, "expected a mapping"),
        (
            "pipelines:\n  p:\n    run_config:\n      retry_policy: {type: exponential}\n",
            "pipelines.p.run_config.retry_policy.type",
            4,
            "exponential",
        ),
        (
            "pipelines:\n  p:\n    run_config:\n      retry_policy: {max_attempts: many}\n",
            "pipelines.p.run_config.retry_policy.max_attempts",
            4,
            "expected an integer",
        ),
        (
            "pipelines:\n  p:\n    run_config:\n      run_from_clean_folder: 1\n",
            "pipelines.p.run_config.run_from_clean_folder",
            4,
            "true/false",
        ),
        ("project:\n  allow_undefined_entities: maybe\n", "project.allow_undefined_entities", 2,
         "true/false"),
        ("pipelines:\n  p:\n    sourse: x\n", "pipelines.p.sourse", 3, "unknown key"),
        ("dagster:\n  jobs:\n    j:\n      pipeline: [a]\n", "dagster.jobs.j.pipeline", 4,
         "unknown key"),
        ("transformations:\n  t:\n    inputs: raw\n", "transformations.t.inputs", 3,
         "expected a list"),
    ],
)
def test_wrong_types_name_file_line_and_key(
    tmp_path: Path, yml: str, key: str, line: int, words: str
) -> None:
    root = make_project(tmp_path, yml)
    with pytest.raises(ManifestError) as exc:
        load_project(str(root))
    err = exc.value
    assert err.key == key
    assert err.line == line
    assert err.file == str(root / "dlt.yml")
    text = str(err)
    assert f"dlt.yml:{line}: {key}:" in text
    assert words in text


def test_yaml_syntax_error_has_file_and_line(tmp_path: Path) -> None:
    root = make_project(tmp_path, "sources:\n  a:\n    type: x\n  b: [unclosed\n")
    with pytest.raises(ManifestError) as exc:
        load_project(str(root))
    assert "YAML syntax error" in str(exc.value)
    assert exc.value.file == str(root / "dlt.yml")
    assert exc.value.line is not None and exc.value.line >= 4


def test_python_tags_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    root = make_project(
        tmp_path,
        f"""
        sources:
          evil: !!python/object/apply:os.system ["touch {marker}"]
        """,
    )
    with pytest.raises(ManifestError) as exc:
        load_project(str(root))
    assert "python/object" in str(exc.value)
    assert "dlt.yml:2: sources.evil" in str(exc.value)
    assert not marker.exists()


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    root = make_project(tmp_path, "sources:\n  a: {}\n  a: {}\n")
    with pytest.raises(ManifestError, match=r"dlt.yml:3: sources.a: duplicate key"):
        load_project(str(root))


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    root = make_project(tmp_path, "- a\n- b\n")
    with pytest.raises(ManifestError, match="must be a mapping"):
        load_project(str(root))


def test_errors_are_project_errors(tmp_path: Path) -> None:
    root = make_project(tmp_path, "pipelines: 5\n")
    with pytest.raises(ProjectError):
        load_project(str(root))


# --- !include -------------------------------------------------------------------------------


def test_include_relative_to_including_file_and_nested(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        """
        project: {name: inc}
        sources: !include conf/sources.yml
        pipelines:
          p: !include conf/pipelines/p.yml
        """,
    )
    write(root / "conf" / "sources.yml", "items: !include items.yml\nother: {type: x.y}\n")
    write(root / "conf" / "items.yml", "type: items.items\nn_items: 7\n")
    write(root / "conf" / "pipelines" / "p.yml", "source: items\ndestination: duckdb\n"
          "dataset_name: '{name}_raw'\n")
    project = load_project(str(root))
    assert project.sources["items"].type == "items.items"
    assert project.sources["items"].config == {"n_items": 7}
    assert project.sources["other"].type == "x.y"
    # placeholders apply to included content too
    assert project.pipelines["p"].dataset_name == "inc_raw"
    current.project(str(root))
    assert dlt.config["sources.items.n_items"] == 7


def test_include_errors_point_into_the_included_file(tmp_path: Path) -> None:
    root = make_project(tmp_path, "pipelines: !include pipes.yml\n")
    write(root / "pipes.yml", "p:\n  source: items\n  destination: [wrong]\n")
    with pytest.raises(ManifestError) as exc:
        load_project(str(root))
    assert exc.value.file == str(root / "pipes.yml")
    assert exc.value.line == 3
    assert "pipes.yml:3: pipelines.p.destination" in str(exc.value)


def test_missing_include_is_a_clear_error(tmp_path: Path) -> None:
    root = make_project(tmp_path, "project: {name: x}\nsources: !include nope/sources.yml\n")
    with pytest.raises(ManifestError) as exc:
        load_project(str(root))
    text = str(exc.value)
    assert "!include file not found" in text
    assert "nope/sources.yml" in text
    assert "dlt.yml:2: sources" in text


def test_include_cycle_is_an_error(tmp_path: Path) -> None:
    root = make_project(tmp_path, "sources: !include a.yml\n")
    write(root / "a.yml", "x: !include b.yml\n")
    write(root / "b.yml", "y: !include a.yml\n")
    with pytest.raises(ManifestError) as exc:
        load_project(str(root))
    assert "cycle" in str(exc.value)
    assert "a.yml" in str(exc.value) and "b.yml" in str(exc.value)


def test_include_of_self_is_a_cycle(tmp_path: Path) -> None:
    root = make_project(tmp_path, "sources: !include dlt.yml\n")
    with pytest.raises(ManifestError, match="cycle"):
        load_project(str(root))


def test_same_file_included_twice_is_not_a_cycle(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        "sources:\n  a: !include src.yml\n  b: !include src.yml\n",
    )
    write(root / "src.yml", "type: items.items\n")
    project = load_project(str(root))
    assert project.sources["a"].type == project.sources["b"].type == "items.items"


def test_include_edit_makes_project_stale(tmp_path: Path) -> None:
    root = make_project(tmp_path, "sources: !include src.yml\n")
    src = write(root / "src.yml", "a: {type: x.y}\n")
    project = load_project(str(root))
    assert not project.is_stale()
    os.utime(src, (1, 1))
    assert project.is_stale()


# --- placeholders ---------------------------------------------------------------------------


def test_all_placeholders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLTPLUS_TEST_BUCKET", "s3://bucket")
    root = make_project(
        tmp_path,
        """
        project:
          name: ph
        sources:
          s:
            env: "{env.DLTPLUS_TEST_BUCKET}/x"
            name: "{name}"
            project_dir: "{project_dir}"
            data_dir: "{data_dir}"
            local_dir: "{local_dir}"
            default_profile: "{default_profile}"
            current_profile: "{current_profile}"
            mixed: "{name}-{current_profile}-{env.DLTPLUS_TEST_BUCKET}"
            nested:
              list: ["{name}", 3, "{current_profile}"]
            spaced: "{ name }"
            number: 5
        """,
    )
    project = load_project(str(root), profile="tests")
    cfg = project.sources["s"].config
    assert cfg["env"] == "s3://bucket/x"
    assert cfg["name"] == "ph"
    assert cfg["project_dir"] == str(root)
    assert cfg["data_dir"] == str(root / "_data" / "tests")
    assert cfg["local_dir"] == str(root / "_data" / "tests" / "local")
    assert cfg["default_profile"] == "dev"
    assert cfg["current_profile"] == "tests"
    assert cfg["mixed"] == "ph-tests-s3://bucket"
    assert cfg["nested"]["list"] == ["ph", 3, "tests"]
    assert cfg["spaced"] == "ph"
    assert cfg["number"] == 5


def test_settings_placeholders_resolve_against_each_other(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        """
        project:
          data_dir: "{project_dir}/state/{current_profile}"
          local_dir: "{data_dir}/files"
        """,
    )
    project = load_project(str(root))
    assert project.data_dir == str(root / "state" / "dev")
    assert project.local_dir == str(root / "state" / "dev" / "files")


def test_relative_data_dir_is_relative_to_project(tmp_path: Path) -> None:
    root = make_project(tmp_path, "project:\n  data_dir: var/{current_profile}\n")
    project = load_project(str(root), profile="tests")
    assert project.data_dir == str(root / "var" / "tests")
    assert project.local_dir == str(root / "var" / "tests" / "local")


def test_brace_escapes(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        """
        sources:
          s:
            template: "{{literal}} and {{{name}}}"
            json: '{{"a": 1}}'
        """,
    )
    cfg = load_project(str(root)).sources["s"].config
    assert cfg["template"] == "{literal} and {project}"
    assert cfg["json"] == '{"a": 1}'


def test_unknown_placeholder_is_an_error_naming_the_key(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        """
        sources:
          s:
            path: "x-{tmp_dir}-y"
        """,
    )
    with pytest.raises(ManifestError) as exc:
        load_project(str(root))
    text = str(exc.value)
    assert "dlt.yml:3: sources.s.path" in text
    assert "unknown placeholder {tmp_dir}" in text
    assert "current_profile" in text  # lists the known ones


def test_unknown_placeholder_in_list_item(tmp_path: Path) -> None:
    root = make_project(tmp_path, "dagster:\n  asset_key_prefix: [ok, '{profile_name}']\n")
    with pytest.raises(ManifestError) as exc:
        load_project(str(root))
    assert exc.value.key == "dagster.asset_key_prefix.1"
    assert exc.value.line == 2


def test_unknown_placeholder_in_project_settings(tmp_path: Path) -> None:
    root = make_project(tmp_path, "project:\n  data_dir: '{nope}/x'\n")
    with pytest.raises(ManifestError, match=r"dlt.yml:2: project.data_dir: unknown placeholder"):
        load_project(str(root))


def test_unset_env_var_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DLTPLUS_TEST_UNSET", raising=False)
    root = make_project(
        tmp_path,
        """
        destinations:
          pg:
            type: postgres
            credentials: "{env.DLTPLUS_TEST_UNSET}"
        """,
    )
    with pytest.raises(ManifestError) as exc:
        load_project(str(root))
    text = str(exc.value)
    assert "DLTPLUS_TEST_UNSET is not set" in text
    assert "dlt.yml:4: destinations.pg.credentials" in text


def test_empty_env_var_is_a_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLTPLUS_TEST_EMPTY", "")
    root = make_project(tmp_path, "sources:\n  s:\n    v: 'a{env.DLTPLUS_TEST_EMPTY}b'\n")
    assert load_project(str(root)).sources["s"].config["v"] == "ab"


def test_env_var_only_needed_where_the_active_profile_uses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DLTPLUS_TEST_PG", raising=False)
    root = make_project(
        tmp_path,
        """
        destinations:
          wh: {type: duckdb}
        profiles:
          prod:
            destinations:
              wh:
                type: postgres
                credentials: "{env.DLTPLUS_TEST_PG}"
        """,
    )
    assert load_project(str(root)).destinations["wh"].type == "duckdb"
    with pytest.raises(ManifestError) as exc:
        load_project(str(root), profile="prod")
    assert "DLTPLUS_TEST_PG" in str(exc.value)
    assert "dlt.yml:8: destinations.wh.credentials" in str(exc.value)
    monkeypatch.setenv("DLTPLUS_TEST_PG", "postgresql://u:p@localhost/db")
    project = load_project(str(root), profile="prod")
    assert project.destinations["wh"].config["credentials"] == "postgresql://u:p@localhost/db"


def test_placeholders_in_manifest_reach_dlt_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DLTPLUS_TEST_N", "4")
    root = make_project(
        tmp_path,
        "sources:\n  items:\n    folder: '{data_dir}/in'\n    n: '{env.DLTPLUS_TEST_N}'\n",
    )
    project = current.project(str(root))
    assert dlt.config["sources.items.folder"] == os.path.join(project.data_dir, "in")
    assert str(dlt.config["sources.items.n"]) == "4"


# --- JSON Schema ----------------------------------------------------------------------------


def _validate(schema: dict[str, Any], value: Any, path: str = "$") -> list[str]:
    """A small JSON Schema checker for the keywords `json_schema()` emits."""
    errors: list[str] = []
    if "anyOf" in schema:
        if not any(not _validate(s, value, path) for s in schema["anyOf"]):
            errors.append(f"{path}: no alternative matches {value!r}")
        return errors
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    types = {
        "object": dict,
        "array": list,
        "string": str,
        "boolean": bool,
        "null": type(None),
    }
    t = schema.get("type")
    if t == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif t == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif t:
        ok = isinstance(value, types[t])
    else:
        ok = True
    if not ok:
        return [f"{path}: expected {t}, got {type(value).__name__}"]
    if t == "object":
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                errors += _validate(props[k], v, f"{path}.{k}")
            elif extra is False:
                errors.append(f"{path}.{k}: not allowed")
            elif isinstance(extra, dict):
                errors += _validate(extra, v, f"{path}.{k}")
    if t == "array":
        for i, v in enumerate(value):
            errors += _validate(schema.get("items", {}), v, f"{path}[{i}]")
    return errors


def test_json_schema_shape() -> None:
    schema = model.json_schema()
    json.dumps(schema)  # serializable
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["type"] == "object"
    for section in (
        "project",
        "profiles",
        "sources",
        "destinations",
        "pipelines",
        "datasets",
        "transformations",
        "runtime",
        "dagster",
    ):
        assert section in schema["properties"], section
    pipeline = schema["properties"]["pipelines"]["additionalProperties"]
    pipeline_obj = next(s for s in pipeline["anyOf"] if s.get("type") == "object")
    policy = pipeline_obj["properties"]["run_config"]["properties"]["retry_policy"]
    assert policy["properties"]["type"]["enum"] == ["none", "fixed", "backoff"]
    source_obj = next(
        s for s in schema["properties"]["sources"]["additionalProperties"]["anyOf"]
        if s.get("type") == "object"
    )
    assert source_obj["additionalProperties"] is True  # other keys are dlt config
    assert pipeline_obj["additionalProperties"] is False


def test_json_schema_accepts_valid_and_rejects_invalid_manifests() -> None:
    import yaml

    schema = model.json_schema()
    example = yaml.safe_load((EXAMPLE_DIR / "dlt.yml").read_text())
    assert _validate(schema, example) == []
    full = yaml.safe_load(ALL_SECTIONS)
    assert _validate(schema, full) == []
    bad = {"pipelines": {"p": {"source": 5, "run_config": {"retry_policy": {"type": "x"}}}}}
    problems = _validate(schema, bad)
    assert problems


def test_example_project_loads() -> None:
    project = load_project(str(EXAMPLE_DIR), profile="tests")
    assert project.name == "shop_analytics"
    assert project.sources["shop"].config["n_customers"] == 10
    assert project.pipelines["shop_pipeline"].schedule is None
