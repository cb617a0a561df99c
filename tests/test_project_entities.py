"""EntityFactory and `current`: sources, destinations, pipelines, datasets, dlt config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dlt
import pytest
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from helpers import ITEMS_SOURCE, clean_env, make_project

from dltplus_dagster import current
from dltplus_dagster.project.catalog import get_dataset
from dltplus_dagster.project.errors import (
    EntityNotFound,
    InvalidDestination,
    ManifestError,
    ProjectError,
    SourceReferenceError,
)
from dltplus_dagster.project.model import SourceEntity

COUNTER_SOURCE = '''
import dlt


@dlt.source
def counter(start: int = 0, stop: int = dlt.config.value, label: str = "row"):
    @dlt.resource(write_disposition="replace")
    def numbers():
        for i in range(start, stop):
            yield {"n": i, "label": label}

    return numbers
'''

RESOURCE_ONLY = '''
import dlt


@dlt.resource(write_disposition="replace")
def letters(count: int = dlt.config.value):
    yield [{"letter": chr(97 + i)} for i in range(count)]
'''

BROKEN_MODULE = '''
import dlt
raise RuntimeError("boom while importing")
'''

FILES = {
    "sources/items.py": ITEMS_SOURCE,
    "sources/counter.py": COUNTER_SOURCE,
    "sources/letters.py": RESOURCE_ONLY,
    "sources/broken.py": BROKEN_MODULE,
    "mycode/__init__.py": "",
    "mycode/extra.py": COUNTER_SOURCE,
    ".dlt/secrets.toml": '[sources.items]\napi_key = "toml-secret-value"\n',
}

YML = """
project:
  name: entities_demo
sources:
  items:                      # no type: the entity name is tried (sources/items.py::items)
    n_items: 5
  short:
    type: counter.counter     # project short form: sources/counter.py::counter
    stop: 3
  full:
    type: mycode.extra.counter
    with_args: {start: 10, stop: 12}
  full_sources:
    type: sources.counter.counter
    stop: 2
    label: from_manifest
  letters:
    type: letters.letters     # a resource, wrapped into a one-resource source
    count: 4
  missing:
    type: nope.nothing
  broken:
    type: broken.broken
destinations:
  wh:
    type: duckdb
  custom_file:
    type: duckdb
    credentials: "{data_dir}/custom.duckdb"
datasets:
  raw:
    destination: [wh]
  reports:
    destination: [wh, custom_file]
  lonely: {}
pipelines:
  items_pipe:
    source: items
    destination: wh
    dataset_name: raw
  implicit_pipe:
    source: counter.counter
    destination: duckdb
    dataset_name: counted
  wrong_dest:
    source: items
    destination: custom_file
    dataset_name: raw
  no_dest:
    source: items
    dataset_name: raw
  no_dataset:
    source: items
    destination: wh
transformations:
  totals:
    function: calc.totals
    inputs: [raw]
    output: reports
"""


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    return make_project(
        tmp_path,
        YML,
        {**FILES, "transformations/calc.py": "def totals(raw):\n    return {}\n"},
    )


# --- sources --------------------------------------------------------------------------------


def test_source_without_type_uses_entity_name_and_manifest_config(root: Path) -> None:
    source = current.entities(str(root)).get_source("items")
    assert source.name == "items"
    assert source.schema.name == "items"
    rows = list(source.resources["item_rows"])
    assert len(rows) == 5  # n_items: 5 from dlt.yml through dlt config injection


def test_source_short_project_form(root: Path) -> None:
    rows = list(current.entities(str(root)).get_source("short"))
    assert [r["n"] for r in rows] == [0, 1, 2]


def test_source_full_dotted_path_and_with_args(root: Path) -> None:
    source = current.entities(str(root)).get_source("full")
    assert source.name == "full"
    assert [r["n"] for r in source] == [10, 11]


def test_source_full_path_under_sources(root: Path) -> None:
    rows = list(current.entities(str(root)).get_source("full_sources"))
    assert rows == [{"n": 0, "label": "from_manifest"}, {"n": 1, "label": "from_manifest"}]


def test_get_source_overrides_win(root: Path) -> None:
    rows = list(current.entities(str(root)).get_source("full", start=11))
    assert [r["n"] for r in rows] == [11]


def test_same_type_two_entities_have_separate_config(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        """
        sources:
          small: {type: counter.counter, stop: 1}
          big: {type: counter.counter, stop: 4, label: big}
        """,
        {"sources/counter.py": COUNTER_SOURCE},
    )
    ent = current.entities(str(root))
    assert [r["label"] for r in ent.get_source("small")] == ["row"]
    assert [r["n"] for r in ent.get_source("big")] == [0, 1, 2, 3]


def test_resource_type_is_wrapped_into_a_source(root: Path) -> None:
    source = current.entities(str(root)).get_source("letters")
    assert source.name == "letters"
    assert list(source.resources) == ["letters"]
    assert [r["letter"] for r in source] == ["a", "b", "c", "d"]


def test_builtin_source_filesystem_readers(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        """
        sources:
          store_files:
            type: filesystem.readers
            bucket_url: "{project_dir}/data"
            file_glob: "stores_*.csv"
        pipelines:
          stores:
            source: store_files
            destination: duckdb
            dataset_name: raw
            resources: [read_csv]
            table_names: {read_csv: stores}
        """,
        {
            "data/stores_a.csv": "store_id,city\n1,Oslo\n2,Porto\n",
            "data/stores_b.csv": "store_id,city\n3,Vienna\n",
            "data/other.csv": "x\n1\n",
        },
    )
    source = current.entities(str(root)).get_source("store_files")
    assert source.name == "store_files"
    assert "read_csv" in source.resources
    result = current.runner(str(root)).run_pipeline("stores")
    assert result.row_counts == {"stores": 3}
    df = current.catalog(str(root)).dataset("raw").stores.df()
    assert sorted(df["city"]) == ["Oslo", "Porto", "Vienna"]


def test_failed_source_lookup_lists_every_candidate(root: Path) -> None:
    ent = current.entities(str(root))
    with pytest.raises(SourceReferenceError) as exc:
        ent.get_source("missing")
    text = str(exc.value)
    assert "sources.missing.type" in text
    for cand in ("nope.nothing", "sources.nope.nothing", "dlt.sources.nope.nothing"):
        assert cand in text
    assert [c for c, _ in exc.value.tried] == [
        "nope.nothing",
        "sources.nope.nothing",
        "dlt.sources.nope.nothing",
    ]


def test_failed_lookup_of_a_bare_name(root: Path) -> None:
    ent = current.entities(str(root))
    with pytest.raises(SourceReferenceError) as exc:
        ent.get_source("ghost")  # implicit: the name is the reference
    assert [c for c, _ in exc.value.tried] == ["sources.ghost.ghost", "dlt.sources.ghost.ghost"]


def test_failed_lookup_missing_attribute(root: Path) -> None:
    ent = current.entities(str(root))
    with pytest.raises(SourceReferenceError) as exc:
        ent.get_source("items.not_there")
    assert "has no attribute 'not_there'" in str(exc.value)


def test_import_error_in_user_module_is_shown(root: Path) -> None:
    with pytest.raises(ProjectError) as exc:
        current.entities(str(root)).get_source("broken")
    assert "boom while importing" in str(exc.value)


def test_bad_with_args_names_the_key(root: Path) -> None:
    with pytest.raises(ProjectError) as exc:
        current.entities(str(root)).get_source("full", no_such_arg=1)
    assert "sources.full.with_args" in str(exc.value)


def test_implicit_source_reference(root: Path) -> None:
    ent = current.entities(str(root))
    assert ent.get_source_entity("counter.counter") == SourceEntity(
        name="counter.counter", type="counter.counter"
    )
    source = ent.get_source("counter.counter", stop=2)
    assert [r["n"] for r in source] == [0, 1]


def test_secret_from_secrets_toml(root: Path) -> None:
    current.project(str(root))
    assert dlt.secrets["sources.items.api_key"] == "toml-secret-value"


def test_missing_secret_is_dlt_config_error(tmp_path: Path) -> None:
    root = make_project(tmp_path, "sources:\n  items: {n_items: 1}\n", {"sources/items.py": ITEMS_SOURCE})
    with pytest.raises(ConfigFieldMissingException) as exc:
        current.entities(str(root)).get_source("items")
    assert "api_key" in str(exc.value)


def test_profile_secrets_file_feeds_the_source(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        "sources:\n  items: {n_items: 1}\n",
        {"sources/items.py": ITEMS_SOURCE, ".dlt/dev.secrets.toml": '[sources.items]\napi_key="d"\n'},
    )
    assert list(current.entities(str(root)).get_source("items").resources["item_rows"])
    with pytest.raises(ConfigFieldMissingException):
        current.entities(str(root), "tests").get_source("items")


def test_undeclared_source_not_allowed(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        "project: {allow_undefined_entities: false}\nsources:\n  a: {type: x.y}\n  b: {type: x.z}\n",
    )
    with pytest.raises(EntityNotFound) as exc:
        current.entities(str(root)).get_source("items")
    assert "source 'items'" in str(exc.value)
    assert "Declared sources: a, b" in str(exc.value)
    assert "allow_undefined_entities" in str(exc.value)


# --- destinations ---------------------------------------------------------------------------


def test_declared_destination_is_named(root: Path) -> None:
    dest = current.entities(str(root)).get_destination("wh")
    assert dest.destination_name == "wh"
    assert dest.destination_type.endswith("duckdb")


def test_implicit_destination_type(root: Path) -> None:
    dest = current.entities(str(root)).get_destination("duckdb")
    assert dest.destination_type.endswith("duckdb")
    assert dest.destination_name == "duckdb"


def test_unknown_implicit_destination(root: Path) -> None:
    with pytest.raises(ProjectError) as exc:
        current.entities(str(root)).get_destination("warehous")
    assert "warehous" in str(exc.value)
    assert "Declared destinations: wh, custom_file" in str(exc.value)


def test_undeclared_destination_not_allowed(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        "project: {allow_undefined_entities: false}\ndestinations:\n  wh: {type: duckdb}\n",
    )
    ent = current.entities(str(root))
    assert ent.get_destination("wh").destination_name == "wh"
    with pytest.raises(EntityNotFound) as exc:
        ent.get_destination("duckdb")
    assert "destination 'duckdb'" in str(exc.value)
    assert "Declared destinations: wh" in str(exc.value)


def test_destination_credentials_path_from_manifest(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(root)
    project = current.project()
    pipeline = dlt.pipeline(
        "custom_file_pipe",
        destination=current.entities().get_destination("custom_file"),
        dataset_name="reports",
    )
    pipeline.run([{"a": 1}], table_name="t")
    assert os.path.isfile(os.path.join(project.data_dir, "custom.duckdb"))
    assert not os.path.exists(os.path.join(project.local_dir, "custom_file.duckdb"))


# --- pipelines ------------------------------------------------------------------------------


def test_get_pipeline(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(root)
    project = current.project()
    pipeline = current.entities().get_pipeline("items_pipe")
    assert isinstance(pipeline, dlt.Pipeline)
    assert pipeline.pipeline_name == "items_pipe"
    assert pipeline.dataset_name == "raw"
    assert pipeline.destination.destination_name == "wh"
    assert pipeline.pipelines_dir == os.path.join(project.data_dir, "pipelines")
    assert pipeline.working_dir == os.path.join(project.data_dir, "pipelines", "items_pipe")
    info = pipeline.run(current.entities().get_source("items"))
    assert not info.has_failed_jobs
    assert os.path.isfile(os.path.join(project.local_dir, "wh.duckdb"))


def test_get_pipeline_overrides(root: Path, tmp_path: Path) -> None:
    pipeline = current.entities(str(root)).get_pipeline(
        "items_pipe", pipelines_dir=str(tmp_path / "own"), dataset_name="other"
    )
    assert pipeline.pipelines_dir == str(tmp_path / "own")
    assert pipeline.dataset_name == "other"


def test_pipeline_kwargs_from_manifest(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        """
        pipelines:
          p:
            source: s
            destination: duckdb
            dataset_name: raw
            dev_mode: true
            progress: log
        """,
    )
    pipeline = current.entities(str(root)).get_pipeline("p")
    assert pipeline.dev_mode is True
    assert pipeline.dataset_name.startswith("raw_")  # dev_mode suffixes the dataset
    assert type(pipeline.collector).__name__ == "LogCollector"


def test_undeclared_pipeline(root: Path) -> None:
    with pytest.raises(EntityNotFound) as exc:
        current.entities(str(root)).get_pipeline("nope")
    assert "pipeline 'nope'" in str(exc.value)
    assert "never implicit" in str(exc.value)
    assert "items_pipe" in str(exc.value)


def test_pipeline_without_destination_or_dataset(root: Path) -> None:
    ent = current.entities(str(root))
    with pytest.raises(ManifestError, match=r"pipelines.no_dest: destination is not defined"):
        ent.get_pipeline("no_dest")
    with pytest.raises(ManifestError, match=r"pipelines.no_dataset: dataset_name is not defined"):
        ent.get_pipeline("no_dataset")


def test_pipeline_destination_not_allowed_for_dataset(root: Path) -> None:
    with pytest.raises(InvalidDestination) as exc:
        current.entities(str(root)).get_pipeline("wrong_dest")
    text = str(exc.value)
    assert "pipelines.wrong_dest.destination" in text
    assert "'raw'" in text and "custom_file" in text and "wh" in text


# --- datasets -------------------------------------------------------------------------------


def test_list_datasets_includes_implicit(root: Path) -> None:
    ent = current.entities(str(root))
    assert ent.list_datasets() == ["raw", "reports", "lonely", "counted"]
    assert ent.list_pipelines()[:2] == ["items_pipe", "implicit_pipe"]
    assert "items" in ent.list_sources() and ent.list_destinations() == ["wh", "custom_file"]
    assert ent.list_transformations() == ["totals"]


def test_get_dataset(root: Path) -> None:
    ent = current.entities(str(root))
    raw = get_dataset(ent, "raw")
    assert raw.name == "raw" and raw.destination_name == "wh"
    assert get_dataset(ent, "reports", "custom_file").destination_name == "custom_file"
    implicit = get_dataset(ent, "counted")  # written by implicit_pipe
    assert implicit.destination_name == "duckdb"
    with pytest.raises(InvalidDestination) as exc:
        get_dataset(ent, "raw", "custom_file")
    assert "Available destinations: ['wh']" in str(exc.value)
    with pytest.raises(InvalidDestination, match="datasets.lonely.destination"):
        get_dataset(ent, "lonely")
    with pytest.raises(EntityNotFound) as exc2:
        get_dataset(ent, "unknown_ds")
    assert "dataset 'unknown_ds'" in str(exc2.value)
    assert "raw, reports" in str(exc2.value)


def test_datasets_not_implicit_when_disallowed(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        """
        project: {allow_undefined_entities: false}
        destinations: {wh: {type: duckdb}}
        datasets:
          declared: {destination: [wh]}
        pipelines:
          p: {source: s, destination: wh, dataset_name: implicit_one}
        """,
    )
    ent = current.entities(str(root))
    assert ent.list_datasets() == ["declared"]
    with pytest.raises(EntityNotFound) as exc:
        get_dataset(ent, "implicit_one")
    assert "Declared datasets: declared" in str(exc.value)
    assert "allow_undefined_entities" in str(exc.value)


def test_dataset_destinations_inferred_in_pipeline_order(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        """
        destinations: {a: {type: duckdb}, b: {type: duckdb}}
        pipelines:
          p1: {source: s, destination: b, dataset_name: shared}
          p2: {source: s, destination: a, dataset_name: shared}
          p3: {source: s, destination: b, dataset_name: shared}
        """,
    )
    assert current.entities(str(root)).dataset_destinations("shared") == ["b", "a"]


# --- transformations ------------------------------------------------------------------------


def test_get_transformation(root: Path) -> None:
    ent = current.entities(str(root))
    t = ent.get_transformation("totals")
    assert t.inputs == ["raw"] and t.output == "reports"
    assert ent.get_transformation_function("totals")(None) == {}
    with pytest.raises(EntityNotFound, match="Declared transformations: totals"):
        ent.get_transformation("nope")


# --- plain dlt inside the project -----------------------------------------------------------


def test_plain_dlt_config_sees_the_manifest(root: Path) -> None:
    current.project(str(root))
    assert dlt.config["sources.items.n_items"] == 5
    assert dlt.config["sources.short.stop"] == 3
    assert dlt.config["sources.full_sources.label"] == "from_manifest"
    # type and with_args are entity keys, not config
    assert dlt.config.get("sources.full.type") is None
    assert dlt.config.get("sources.full.with_args") is None


def test_plain_dlt_pipeline_with_declared_destination_name(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(root)
    project = current.project()
    pipeline = dlt.pipeline("plain", destination="wh", dataset_name="raw")
    assert pipeline.pipelines_dir == os.path.join(project.data_dir, "pipelines")
    pipeline.run([{"id": 1}, {"id": 2}], table_name="plain_rows")
    assert os.path.isfile(os.path.join(project.local_dir, "wh.duckdb"))
    # the catalog reads the same file
    assert current.catalog().dataset("raw").row_counts()["plain_rows"] == 2


def test_plain_dlt_in_a_fresh_project_folder(tmp_path: Path) -> None:
    """Without any `current` call (the dlt plugin gives the context) in a new process."""
    root = make_project(
        tmp_path,
        "sources:\n  items: {n_items: 3}\ndestinations:\n  wh: {type: duckdb}\n",
    )
    code = (
        "import dlt\n"
        "assert dlt.config['sources.items.n_items'] == 3\n"
        "p = dlt.pipeline('plain', destination='wh', dataset_name='raw')\n"
        "p.run([{'id': 1}], table_name='t')\n"
        "print(p.pipelines_dir)\n"
    )
    env = clean_env()
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == str(root / "_data" / "dev" / "pipelines")
    assert (root / "_data" / "dev" / "local" / "wh.duckdb").is_file()


# --- current.project() ----------------------------------------------------------------------


def test_current_project_attributes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DLTPLUS_TEST_PW", "hunter2-secret")
    root = make_project(
        tmp_path,
        """
        project:
          name: attrs
        sources:
          items:
            n_items: 2
            api_key: "{env.DLTPLUS_TEST_PW}"
            client: {token: "{env.DLTPLUS_TEST_PW}", page: 3}
        destinations:
          pg:
            type: postgres
            credentials: "postgresql://loader:{env.DLTPLUS_TEST_PW}@localhost:5432/db"
          pg2:
            type: postgres
            server_url: "postgresql://loader:{env.DLTPLUS_TEST_PW}@localhost:5432/db"
        pipelines:
          p: {source: items, destination: pg, dataset_name: raw}
        datasets:
          raw: {destination: [pg]}
        transformations:
          t: {sql: {x: "SELECT 1"}, inputs: [raw], output: out}
        profiles:
          prod: {}
        """,
    )
    monkeypatch.chdir(root)
    p = current.project()
    assert p.name == "attrs"
    assert p.project_dir == str(root)
    assert p.current_profile == "dev"
    assert p.default_profile == "dev"
    assert p.profiles == ["access", "dev", "prod", "tests"]
    assert list(p.sources) == ["items"]
    assert list(p.destinations) == ["pg", "pg2"]
    assert list(p.pipelines) == ["p"]
    assert list(p.datasets) == ["raw"]
    assert list(p.transformations) == ["t"]
    cfg = p.config
    assert cfg["project"]["name"] == "attrs"
    assert cfg["project"]["current_profile"] == "dev"
    assert cfg["project"]["data_dir"] == str(root / "_data" / "dev")
    assert cfg["sources"]["items"]["n_items"] == 2
    assert cfg["sources"]["items"]["api_key"] == "***"
    assert cfg["sources"]["items"]["client"] == {"token": "***", "page": 3}
    # a DSN shows where it points, never its password
    assert cfg["destinations"]["pg"]["credentials"] == "postgresql://loader:***@localhost:5432/db"
    assert cfg["destinations"]["pg2"]["server_url"] == "postgresql://loader:***@localhost:5432/db"
    assert "profiles" not in cfg
    assert "hunter2" not in json.dumps(cfg)
    assert "hunter2" not in repr(p)
    # the real value still reaches dlt
    assert dlt.secrets["sources.items.api_key"] == "hunter2-secret"


def test_toml_secret_never_in_config(root: Path) -> None:
    p = current.project(str(root))
    assert "toml-secret-value" not in json.dumps(p.config)
    assert "toml-secret-value" not in json.dumps(p.resolved, default=str)


def test_current_functions_share_the_active_project(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(root / "sources")
    p = current.project()
    assert current.project() is p
    assert current.entities().project is p
    assert current.catalog().project is p
    assert current.runner().project is p
    assert dlt.current.run_context().run_dir == str(root)
    assert dlt.current.run_context().name == "entities_demo"
