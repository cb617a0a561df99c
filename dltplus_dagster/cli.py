"""`dltplus`: the command line of a dlt.yml project, shaped like dlt+'s.

    dltplus [--project DIR] [--debug] pipeline [--profile P] NAME run [--limit N] [--resources a,b]
    dltplus pipeline list
    dltplus dataset [--profile P] NAME {row-counts [--dlt-tables], head TABLE [--limit N], info}
    dltplus dataset list
    dltplus transformation [--profile P] NAME run | transformation list
    dltplus project [--profile P] {validate, config [--format F] [--section S], info, list,
                                   prepare}
    dltplus profile {list, info, pin NAME}

The entity name comes before the verb. `--project` and `--profile` are accepted after the
command group and after the verb too. Pipelines and transformations run through the same
`Runner` as `current.runner()` and Dagster. Errors print one line, `Error: ...`, to stderr and
exit 1; `--debug` adds the traceback. Nothing printed ever shows a secret.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from dltplus_dagster.project.errors import ProfileNotFound, ProjectError, ProjectNotFound
from dltplus_dagster.project.redact import mask_url, scrub, secret_values

if TYPE_CHECKING:
    from dltplus_dagster.project.catalog import Catalog, Dataset
    from dltplus_dagster.project.entities import EntityFactory
    from dltplus_dagster.project.project import Project
    from dltplus_dagster.project.runner import Runner

Handler = Callable[["Session", argparse.Namespace], int]

HEAD_ROWS = 5


# --- the session: which project and profile a command acts on --------------------------------


class Session:
    """The project dir and profile of one command, and access to the project API for them."""

    def __init__(self, project: str | None, profile: str | None) -> None:
        self.project_arg = project
        self.profile = profile
        self._project_dir: str | None = None
        self._secrets: list[str] = []

    @property
    def project_dir(self) -> str:
        """`--project` (a dir, or the module/distribution name of an installed project
        package), else `DLT_PROJECT_DIR`, else the nearest dir with `dlt.yml` from the cwd."""
        if self._project_dir is None:
            self._project_dir = resolve_project_dir(self.project_arg)
        return self._project_dir

    def project(self) -> Project:
        """The project for the selected profile (loaded once per command)."""
        from dltplus_dagster import current

        project = current.project(self.project_dir, self.profile)
        self._secrets = secret_values(
            project.settings_dir, project.current_profile, project.resolved
        )
        return project

    def entities(self) -> EntityFactory:
        from dltplus_dagster import current

        self.project()
        return current.entities(self.project_dir, self.profile)

    def catalog(self) -> Catalog:
        from dltplus_dagster import current

        self.project()
        return current.catalog(self.project_dir, self.profile)

    def runner(self) -> Runner:
        from dltplus_dagster import current

        self.project()
        return current.runner(self.project_dir, self.profile)

    def clean(self, text: str) -> str:
        """`text` with URL passwords and every secret value known to the project masked.

        Known secrets: all values of the project's secrets TOML files (of every profile, so
        this works before the project loads) and of secret-named keys in the manifest.
        """
        secrets = list(self._secrets)
        if self._project_dir:
            secrets.extend(toml_secrets(os.path.join(self._project_dir, ".dlt")))
        return scrub(mask_url(text), secrets)


def resolve_project_dir(value: str | None) -> str:
    """The project dir for `--project`: a path, or an installed project package's name."""
    from dltplus_dagster.project.project import find_project_dir

    if not value:
        return find_project_dir()
    if os.path.isdir(value):
        return os.path.abspath(value)
    from dltplus_dagster.project.packaging import installed_packages

    for pkg in installed_packages():
        if value in (pkg.module, pkg.distribution) and pkg.project_dir:
            return pkg.project_dir
    raise ProjectNotFound([f"{value} (not a directory, nor an installed dlt package)"])


def toml_secrets(settings_dir: str) -> list[str]:
    """Every string value of `secrets.toml` and `<profile>.secrets.toml` in `settings_dir`."""
    import tomllib

    values: list[str] = []
    try:
        names = sorted(os.listdir(settings_dir))
    except OSError:
        return values
    for name in names:
        if name != "secrets.toml" and not name.endswith(".secrets.toml"):
            continue
        try:
            with open(os.path.join(settings_dir, name), "rb") as f:
                values.extend(_strings(tomllib.load(f)))
        except (OSError, tomllib.TOMLDecodeError):
            continue
    return values


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


# --- output helpers ---------------------------------------------------------------------------


def _frame_text(frame: Any) -> str:
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", None):
        return frame.to_string(index=False, max_colwidth=60)


def _require_name(args: argparse.Namespace, what: str) -> str:
    if not args.name:
        raise ProjectError(f"{what} name is required: dltplus {what} NAME {args.verb}")
    return str(args.name)


# --- pipeline ---------------------------------------------------------------------------------


def pipeline_run(session: Session, args: argparse.Namespace) -> int:
    """Run a declared pipeline through the project runner and print what it loaded."""
    name = _require_name(args, "pipeline")
    runner = session.runner()
    project = runner.project
    runner.entities.get_pipeline_entity(name)  # an unknown name fails before "Running"
    print(f"Running pipeline {name} (project {project.name}, profile {project.current_profile})")
    result = runner.run_pipeline(name, limit=args.limit, resources=args.resources)
    if result.load_info is not None:
        print(session.clean(str(result.load_info)))
    print(f"Finished {result}")
    return 0


def pipeline_list(session: Session, args: argparse.Namespace) -> int:
    """List the declared pipelines: `* name: source to destination`."""
    pipelines = session.project().pipelines
    print(f"Found {len(pipelines)} pipeline(s) in project:")
    for name, p in pipelines.items():
        print(f"  * {name}: {p.source or '(no source)'} to {p.destination or '(no destination)'}")
    return 0


# --- dataset ----------------------------------------------------------------------------------


def _dataset(session: Session, args: argparse.Namespace) -> Dataset:
    name = _require_name(args, "dataset")
    return session.catalog().dataset(name, getattr(args, "destination", None))


def dataset_row_counts(session: Session, args: argparse.Namespace) -> int:
    """Rows per table of a dataset (declared or implicit)."""
    ds = _dataset(session, args)
    print(f"Loading row counts for dataset {ds.name}.")
    counts = ds.row_counts(dlt_tables=args.dlt_tables)
    if not counts:
        print(f"Dataset {ds.name} has no tables on destination {ds.destination_name} yet.")
        return 0
    print(_frame_text(counts.df()))
    return 0


def dataset_head(session: Session, args: argparse.Namespace) -> int:
    """The first rows of one table."""
    ds = _dataset(session, args)
    relation = ds.table(args.table)
    print(f"Loading first {args.limit} rows of table {args.table}.")
    print(_frame_text(relation.head(args.limit).df()))
    return 0


def dataset_info(session: Session, args: argparse.Namespace) -> int:
    """A dataset's destinations, contract and tables."""
    ds = _dataset(session, args)
    project = ds.project
    declared = ds.name in project.datasets
    print(f"Dataset {ds.name} ({'declared' if declared else 'implicit'})")
    if ds.entity.description:
        print(f"  description: {ds.entity.description}")
    destinations = ds.entities.dataset_destinations(ds.name)
    shown = [f"{d} (default)" if i == 0 else d for i, d in enumerate(destinations)]
    print(f"  destinations: {', '.join(shown) or '(none)'}")
    if ds.contract is not None:
        print(f"  contract: {ds.contract}")
    tables = ds.tables
    print(f"  tables on {ds.destination_name}:" if tables else "  tables: (none loaded yet)")
    for table in tables:
        print(f"    {table}")
    return 0


def dataset_list(session: Session, args: argparse.Namespace) -> int:
    """Declared datasets and, when allowed, implicit ones (pipelines' `dataset_name`s)."""
    entities = session.entities()
    names = entities.list_datasets()
    print(f"Found {len(names)} dataset(s) in project:")
    for name in names:
        kind = "declared" if name in entities.project.datasets else "implicit"
        dests = ", ".join(entities.dataset_destinations(name)) or "(no destination)"
        print(f"  * {name}: {dests} ({kind})")
    if entities.allow_undefined_entities:
        print("Datasets that pipelines write (their dataset_name) work without being declared.")
    return 0


# --- transformation ---------------------------------------------------------------------------


def transformation_run(session: Session, args: argparse.Namespace) -> int:
    """Run a transformation through the project runner."""
    name = _require_name(args, "transformation")
    runner = session.runner()
    entity = runner.entities.get_transformation(name)
    profile = runner.project.current_profile
    print(f"Running transformation {name} (project {runner.project.name}, profile {profile})")
    written = runner.run_transformation(name)
    counts = ", ".join(f"{t}={n}" for t, n in written.items()) or "no tables"
    print(f"Finished {name}: wrote {counts} into {entity.output}")
    return 0


def transformation_list(session: Session, args: argparse.Namespace) -> int:
    """List the declared transformations: `* name: inputs to output`."""
    transformations = session.project().transformations
    print(f"Found {len(transformations)} transformation(s) in project:")
    for name, t in transformations.items():
        print(f"  * {name}: {', '.join(t.inputs) or '(no inputs)'} to {t.output or '(no output)'}")
    return 0


# --- project ----------------------------------------------------------------------------------


def project_validate(session: Session, args: argparse.Namespace) -> int:
    """Load the project for the profile and check every reference; exit 1 on problems."""
    from dltplus_dagster.project.validate import validate_project

    try:
        project = session.project()
        problems = validate_project(project)
    except ProjectError as e:
        problems = [str(e)]
        project = None
    where = f"project {project.name}, profile {project.current_profile}" if project else "project"
    if not problems:
        print(f"Configuration validation successful ({where}).")
        return 0
    print(f"Found {len(problems)} problem(s) in {where}:", file=sys.stderr)
    for problem in problems:
        print(f"  - {session.clean(problem)}", file=sys.stderr)
    return 1


def project_config(session: Session, args: argparse.Namespace) -> int:
    """The merged, interpolated manifest of the profile, secrets redacted."""
    project = session.project()
    doc = project.config
    if args.section:
        if args.section not in doc:
            raise ProjectError(
                f"section '{args.section}' is not in the config of project {project.name}; "
                f"sections: {', '.join(doc)}"
            )
        doc = {args.section: doc[args.section]}
    if args.format == "json":
        text = json.dumps(doc, indent=2, default=str)
    else:
        import yaml

        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False)
    print(session.clean(text.rstrip("\n")))
    return 0


def project_info(session: Session, args: argparse.Namespace) -> int:
    """Name, dirs and profiles of the project."""
    p = session.project()
    rows = [
        ("Project name", p.name),
        ("Project dir", p.project_dir),
        ("Manifest", p.manifest_path),
        ("Default profile", p.default_profile),
        ("Current profile", f"{p.current_profile} (from {p.profile_source})"),
        ("Available profiles", ", ".join(p.profiles)),
        ("Data dir", p.data_dir),
        ("Local files dir", p.local_dir),
        ("Settings dir", p.settings_dir),
    ]
    width = max(len(label) for label, _ in rows) + 1
    for label, value in rows:
        print(f"{label + ':':<{width}} {value}")
    return 0


def project_prepare(session: Session, args: argparse.Namespace) -> int:
    """Fill the table-list cache (`.dlt/.dltplus_state.json`) for every pipeline, so that a
    code location loads without calling source factories (e.g. in an image build step)."""
    from dltplus_dagster.project.table_state import STATE_FILE, TableState

    project = session.project()
    state = TableState(project, session.entities())
    failed = 0
    print(f"Preparing {len(project.pipelines)} pipeline(s) of project {project.name}, "
          f"profile {project.current_profile}:")
    try:
        for name, entity in project.pipelines.items():
            cached = state.is_cached(name)
            try:
                tables = state.pipeline_tables(name)
            except Exception as e:  # noqa: BLE001 - reported per pipeline, the others go on
                failed += 1
                first_line = error_message(e).splitlines()[0]  # dlt appends its lookup trace
                print(f"  ! {name}: source '{entity.source}' could not be built: "
                      f"{session.clean(first_line)}", file=sys.stderr)
                continue
            try:  # tables a run decided (nested, named per row): from the stored schema
                if state.record_stored_schema(name):
                    tables = state.pipeline_tables(name)
            except Exception as e:  # noqa: BLE001 - an unreachable destination: a note only
                print(f"  ({name}: the stored schema was not read: "
                      f"{session.clean(error_message(e).splitlines()[0])})", file=sys.stderr)
            listed = ", ".join(t.table for t in tables) or "(no tables)"
            print(f"  * {name}: {listed} ({'cached' if cached else 'discovered'})")
    finally:
        state.save()
    if failed:
        print(f"Error: {failed} pipeline(s) could not be prepared; the cache holds the others "
              f"({os.path.join(project.project_dir, STATE_FILE)})", file=sys.stderr)
        return 1
    print(f"Table cache: {os.path.join(project.project_dir, STATE_FILE)}")
    return 0


def project_list(session: Session, args: argparse.Namespace) -> int:
    """Installed project packages (entry point group `dlt_package`)."""
    from dltplus_dagster.project.packaging import installed_packages

    packages = installed_packages()
    if not packages:
        print("No installed dlt packages found")
        return 0
    print(f"Found {len(packages)} dlt package(s):")
    for pkg in packages:
        print(f"  {pkg.distribution} ({pkg.module}): {pkg.description}")
    return 0


# --- profile ----------------------------------------------------------------------------------


def _profile_facts(project_dir: str) -> tuple[list[str], str]:
    """Available profiles and the default one, from the manifest alone (no full load)."""
    from dltplus_dagster.project.manifest import MANIFEST_NAME, load_manifest
    from dltplus_dagster.project.profiles import available_profiles

    raw, _ = load_manifest(os.path.join(project_dir, MANIFEST_NAME))
    profiles = raw.get("profiles") if isinstance(raw.get("profiles"), dict) else {}
    settings = raw.get("project") if isinstance(raw.get("project"), dict) else {}
    default = settings.get("default_profile") or "dev"
    return available_profiles(profiles or {}, str(default)), str(default)


def profile_list(session: Session, args: argparse.Namespace) -> int:
    """Available profiles, marking the current, default and pinned one."""
    from dltplus_dagster.project.profiles import read_pin, select_profile

    root = session.project_dir
    available, default = _profile_facts(root)
    current, reason = select_profile(root, session.profile, default)
    pinned = read_pin(root)
    print("Available profiles:")
    for name in available:
        marks = [
            m
            for m, on in (
                ("current", name == current),
                ("default", name == default),
                ("pinned", name == pinned),
            )
            if on
        ]
        print(f"  * {name}" + (f" ({', '.join(marks)})" if marks else ""))
    unknown = "" if current in available else " - not a known profile!"
    print(f"Current profile: {current} (from {reason}){unknown}")
    print(f"Default profile: {default}")
    print(f"Pinned profile: {pinned or '(none)'}")
    return 0


def profile_pin(session: Session, args: argparse.Namespace) -> int:
    """Pin a profile for this project (`.dlt/profile-name`)."""
    from dltplus_dagster.project.profiles import PROFILE_ENV, write_pin

    root = session.project_dir
    available, _ = _profile_facts(root)
    if args.profile_name not in available:
        raise ProfileNotFound(args.profile_name, available, root)
    path = write_pin(root, args.profile_name)
    print(f"Pinned profile {args.profile_name} in {path}")
    if env := os.environ.get(PROFILE_ENV):
        print(f"Note: {PROFILE_ENV}={env} is set and takes precedence over the pin.")
    return 0


# --- parser -----------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _name_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated names")
    return names


def _common() -> argparse.ArgumentParser:
    """`--project` and `--profile`, accepted after a command group and after a verb."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--project",
        default=argparse.SUPPRESS,
        help="project dir, or the name of an installed project package",
    )
    common.add_argument(
        "--profile", default=argparse.SUPPRESS, help="profile to use (default: pinned/default)"
    )
    return common


class _Group:
    """A command group (`pipeline`, `dataset`, ...) and its verbs."""

    def __init__(
        self,
        commands: Any,
        common: argparse.ArgumentParser,
        name: str,
        help_text: str,
        entity: str | None = None,
    ) -> None:
        self.common = common
        self.parser = commands.add_parser(
            name, parents=[common], help=help_text, description=help_text
        )
        if entity:
            self.parser.add_argument(
                "name", nargs="?", metavar=entity.upper(), help=f"{entity} name (before the verb)"
            )
        self.verbs = self.parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    def verb(self, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        parser = self.verbs.add_parser(
            name, parents=[self.common], help=help_text, description=help_text
        )
        parser.set_defaults(handler=handler)
        return parser


def build_parser() -> argparse.ArgumentParser:
    """The `dltplus` argument parser."""
    parser = argparse.ArgumentParser(
        prog="dltplus", description="Run and inspect a dlt.yml project (dlt+ style CLI)."
    )
    parser.add_argument(
        "--project",
        default=None,
        help="project dir or installed package (default: DLT_PROJECT_DIR or "
        "the nearest dir with dlt.yml)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common()
    _pipeline_commands(commands, common)
    _dataset_commands(commands, common)
    _transformation_commands(commands, common)
    _project_commands(commands, common)
    _profile_commands(commands, common)
    return parser


def _pipeline_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    group = _Group(commands, common, "pipeline", "run and list pipelines", entity="pipeline")
    run = group.verb("run", pipeline_run, "run the pipeline with the project runner")
    run.add_argument(
        "--limit",
        type=_positive_int,
        default=None,
        help="extract at most N pages/items per resource",
    )
    run.add_argument(
        "--resources",
        type=_name_list,
        default=None,
        help="comma-separated resources to run (default: all)",
    )
    group.verb("list", pipeline_list, "list the declared pipelines")


def _dataset_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    group = _Group(commands, common, "dataset", "inspect datasets", entity="dataset")
    group.parser.add_argument(
        "--destination", default=None, help="destination to read from (if the dataset has several)"
    )
    counts = group.verb("row-counts", dataset_row_counts, "rows per table")
    counts.add_argument("--dlt-tables", action="store_true", help="include _dlt_* tables")
    head = group.verb("head", dataset_head, "first rows of a table")
    head.add_argument("table", help="table name")
    head.add_argument(
        "--limit", type=_positive_int, default=HEAD_ROWS, help=f"rows to show (default {HEAD_ROWS})"
    )
    group.verb("info", dataset_info, "destinations and tables of the dataset")
    group.verb("list", dataset_list, "list declared and implicit datasets")


def _transformation_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    group = _Group(
        commands, common, "transformation", "run and list transformations", entity="transformation"
    )
    group.verb("run", transformation_run, "run the transformation")
    group.verb("list", transformation_list, "list the declared transformations")


def _project_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    group = _Group(commands, common, "project", "validate and inspect the project")
    group.verb("validate", project_validate, "check the manifest and every reference")
    config = group.verb("config", project_config, "print the merged config (secrets redacted)")
    config.add_argument("--format", choices=("yaml", "json"), default="yaml")
    config.add_argument("--section", default=None, help="print only this top-level section")
    group.verb("info", project_info, "name, dirs and profiles")
    group.verb("list", project_list, "list installed project packages")
    group.verb("prepare", project_prepare,
               "cache every pipeline's table list, so definitions load without source calls")


def _profile_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    group = _Group(commands, common, "profile", "list and pin profiles")
    group.verb("list", profile_list, "available profiles; current, default and pinned")
    group.verb("info", profile_list, "same as list")
    pin = group.verb("pin", profile_pin, "pin a profile for this project (.dlt/profile-name)")
    pin.add_argument("profile_name", metavar="NAME", help="profile to pin")


# --- entry point ------------------------------------------------------------------------------


def error_message(error: BaseException) -> str:
    """One readable line (or a few) for an error, without the exception chain."""
    from dlt.pipeline.exceptions import PipelineStepFailed

    if isinstance(error, PipelineStepFailed):
        cause = error.exception
        return (
            f"pipeline '{error.pipeline.pipeline_name}' failed at step {error.step}: "
            f"{type(cause).__name__}: {cause}"
        )
    if isinstance(error, ProjectError):
        return str(error)
    from dlt.common.exceptions import DltException

    if isinstance(error, DltException):
        return f"{type(error).__name__}: {error}"
    return f"{type(error).__name__}: {error} (run with --debug for the traceback)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run `dltplus` with `argv` (default: the process arguments); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or a usage error argparse already printed
        return e.code if isinstance(e.code, int) else 2
    session = Session(args.project, getattr(args, "profile", None))
    try:
        return args.handler(session, args)
    except KeyboardInterrupt:
        print("Interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the CLI's one place that turns errors into text
        if args.debug:
            print(session.clean(traceback.format_exc()), file=sys.stderr, end="")
        print(f"Error: {session.clean(error_message(e))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
