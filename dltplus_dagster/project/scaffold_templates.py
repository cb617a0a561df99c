"""Templates of `dltplus project init SOURCE DESTINATION`: manifest blocks and files per choice.

Each source and destination has a `dlt.yml` block, optional `.dlt/secrets.toml` lines with
placeholders (never a real credential) and optional extra files. `arrow` and `filesystem`
run offline as generated; `rest_api` reads a public API; `sql_database` and `postgres` need
their placeholders filled in.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Part:
    """What one source or destination adds to a new project."""

    manifest: str
    """The entity's block under `sources:` / `destinations:` (indented two spaces)."""
    secrets: str = ""
    """Lines for `.dlt/secrets.toml` (placeholders)."""
    config: str = ""
    """Lines for `.dlt/config.toml`."""
    files: dict[str, str] = field(default_factory=dict)
    """Extra files: relative path -> text."""
    note: str = ""
    """What the user must do before the first run (empty: runs as generated)."""


PLACEHOLDER = "<configure me>"

ARROW_SOURCE = '''"""An example source: `row_count` rows as one Arrow table (config `sources.arrow.row_count`).

Replace it with your own `@dlt.source`; `dlt.yml` refers to it as `arrow.source`
(module `sources/arrow.py`, function `source`).
"""

import dlt
import pyarrow as pa


@dlt.source
def source(row_count: int = dlt.config.value):
    @dlt.resource(name="items", primary_key="id", write_disposition="replace")
    def items():
        ids = list(range(1, row_count + 1))
        yield pa.table({"id": ids, "name": [f"item {i}" for i in ids]})

    return items
'''

SAMPLE_CSV = "id,name,city\n1,Ada,London\n2,Grace,Arlington\n3,Linus,Helsinki\n"

SOURCES: dict[str, Part] = {
    "arrow": Part(
        manifest="""\
  arrow:
    type: arrow.source                # sources/arrow.py, function `source`
    row_count: 100                    # dlt config of the source: row_count=dlt.config.value
""",
        files={"sources/__init__.py": "", "sources/arrow.py": ARROW_SOURCE},
    ),
    "rest_api": Part(
        manifest="""\
  rest_api:
    type: rest_api                    # dlt's REST API source, configured here
    client:
      base_url: https://pokeapi.co/api/v2/
    resource_defaults:
      endpoint:
        params: {limit: 100}
    resources: [pokemon, berry]
""",
        secrets="""\
# [sources.rest_api.client.auth]       # for an API that needs a token
# type = "bearer"
# token = "<configure me>"
""",
    ),
    "sql_database": Part(
        manifest="""\
  sql_database:
    type: sql_database                # dlt's SQL database source; credentials in secrets.toml
    # table_names: [customers, orders]  # default: every table of the schema
""",
        secrets=f"""\
[sources.sql_database.credentials]
drivername = "postgresql"
database = "{PLACEHOLDER}"
username = "{PLACEHOLDER}"
password = "{PLACEHOLDER}"
host = "{PLACEHOLDER}"
port = 5432
""",
        note="fill in the database credentials in .dlt/secrets.toml",
    ),
    "filesystem": Part(
        manifest="""\
  filesystem:
    type: filesystem.readers          # dlt's filesystem source: files -> rows
    bucket_url: "{project_dir}/data"  # a local folder, s3://..., gs://..., az://...
    file_glob: "*.csv"
""",
        files={"data/sample.csv": SAMPLE_CSV},
    ),
}
"""Source choices; the entity name is the choice."""

SOURCE_RESOURCES: dict[str, str] = {"filesystem": "    resources: [read_csv]\n"}
"""Pipeline lines a source needs (the filesystem source has one reader per file format)."""

DESTINATIONS: dict[str, Part] = {
    "duckdb": Part(
        manifest="""\
  duckdb:
    type: duckdb                      # a local file: {local_dir}/duckdb.duckdb
""",
    ),
    "postgres": Part(
        manifest="""\
  postgres:
    type: postgres                    # credentials in .dlt/secrets.toml
""",
        secrets=f"""\
[destination.postgres.credentials]
database = "{PLACEHOLDER}"
username = "{PLACEHOLDER}"
password = "{PLACEHOLDER}"
host = "{PLACEHOLDER}"
port = 5432
""",
        note="fill in the PostgreSQL credentials in .dlt/secrets.toml",
    ),
    "filesystem": Part(
        manifest="""\
  filesystem:
    type: filesystem
    bucket_url: "{local_dir}/files"   # or s3://bucket/path (credentials in secrets.toml)
""",
    ),
}
"""Destination choices; the entity name is the choice."""

MANIFEST = """\
# The dlt project {name}, scaffolded by `dltplus project init {source} {destination}`.
# Run it:   dltplus pipeline my_pipeline run
# Inspect:  dltplus dataset my_pipeline_dataset row-counts
# Dagster:  build_definitions("<this dir>") makes every table an asset
project:
  name: {name_yaml}

profiles:
  dev: {{}}                           # local runs; data in _data/dev
  # prod:                           # a profile overrides parts of this file
  #   destinations: ...

sources:
{sources}
destinations:
{destinations}
datasets: {{}}                        # declare datasets for contracts, several destinations

pipelines:
  my_pipeline:
    source: {source_name}
    destination: {destination_name}
    dataset_name: my_pipeline_dataset
{pipeline_extra}
"""

CONFIG = """\
[runtime]
log_level = "WARNING"
{extra}"""

SECRETS = """\
# Secrets of the project: never commit this file (it is in .gitignore).
# Placeholders "{placeholder}" must be replaced before the pipelines that use them run.
# A profile's own secrets go to .dlt/<profile>.secrets.toml and win over this file.
{extra}"""

GITIGNORE = """\
# local state and destination files of every profile
_data/
# secrets and the pinned profile are per machine
.dlt/secrets.toml
.dlt/*.secrets.toml
.dlt/profile-name
__pycache__/
"""
