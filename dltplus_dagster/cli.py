"""`dltplus`: the command line of a dlt.yml project, shaped like dlt+'s.

    dltplus [--project DIR] [--debug] pipeline [--profile P] NAME run [--limit N] [--resources a,b]
                                [--progress log] [--refresh MODE] [--source-arg NAME=VALUE ...]
                                        [--partition KEY | --partition-range FIRST...LAST]
    dltplus pipeline NAME {info, trace [--stored|--local], schema, failed-jobs, load-package,
                           sync, drop}
    dltplus pipeline list
    dltplus dataset [--profile P] NAME {row-counts [--dlt-tables], head TABLE [--limit N], info,
                                        check [--tables a,b], drop [--yes]}
    dltplus dataset list
    dltplus transformation [--profile P] NAME run [--partition KEY | --partition-range A...B]
    dltplus transformation list
    dltplus project [--profile P] {validate, config [show|validate] [--format F] [--section S],
                                   info, list, prepare, clean [--yes]}
    dltplus project init SOURCE DESTINATION [DIR]
    dltplus profile {list, info, pin NAME} | profile NAME {info, pin}

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
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from dltplus_dagster.project.errors import ProfileNotFound, ProjectError, ProjectNotFound
from dltplus_dagster.project.redact import mask_url, scrub, toml_secret_values

if TYPE_CHECKING:
    from dltplus_dagster.project.catalog import Catalog
    from dltplus_dagster.project.dataset import Dataset
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
        self._secrets = project.secret_values()
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

        Known secrets: the project's (`Project.secret_values`: `{env.*}` substitutions,
        secret-named manifest keys) and the values of the secrets TOML files of every profile,
        so this works before the project loads.
        """
        secrets = list(self._secrets)
        if self._project_dir:
            secrets.extend(toml_secret_values(os.path.join(self._project_dir, ".dlt")))
        return scrub(mask_url(text), secrets)


def resolve_project_dir(value: str | None) -> str:
    """The project dir for `--project`: a path, or an installed project package's name."""
    from dltplus_dagster.project.project import find_project_dir

    if not value:
        return find_project_dir()
    if os.path.isdir(value):
        return os.path.abspath(value)
    from dltplus_dagster.project.packaging import find_installed_project

    pkg = find_installed_project(value)
    if pkg is not None and pkg.project_dir:
        return pkg.project_dir
    raise ProjectNotFound([f"{value} (not a directory, nor an installed dlt package)"])


# --- output helpers ---------------------------------------------------------------------------


def _frame_text(frame: Any) -> str:
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", None):
        text: str = frame.to_string(index=False, max_colwidth=60)
        return text


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
    partition = _partition_args(args)  # a malformed range fails before "Running"
    print(f"Running pipeline {name} (project {project.name}, profile {project.current_profile})")
    result = runner.run_pipeline(
        name, limit=args.limit, resources=args.resources, refresh=args.refresh,
        source_args=dict(args.source_args or []), progress=args.progress, **partition,
    )
    if result.load_info is not None:
        print(session.clean(str(result.load_info)))
    print(f"Finished {result}")
    return 0


def _partition_args(args: argparse.Namespace) -> dict[str, Any]:
    """`--partition KEY` / `--partition-range FIRST...LAST` as runner arguments."""
    from dltplus_dagster.project.partitions import parse_range

    if getattr(args, "partition_range", None):
        return {"partition_range": parse_range(args.partition_range)}
    if getattr(args, "partition", None):
        return {"partition": args.partition}
    return {}


def _partition_options(verb: argparse.ArgumentParser) -> None:
    keys = verb.add_mutually_exclusive_group()
    keys.add_argument("--partition", default=None, metavar="KEY",
                      help="run one partition (e.g. 2024-03-01)")
    keys.add_argument("--partition-range", default=None, metavar="FIRST...LAST",
                      help="run a range of partitions in one run (e.g. 2024-03-01...2024-03-07)")


def pipeline_trace(session: Session, args: argparse.Namespace) -> int:
    """The pipeline's traces: the stored ones (`run_config.store_trace_info`, newest first) when
    the pipeline stores them or `--stored` asks, else dlt's trace of the last local run."""
    from dltplus_dagster.project.trace_store import format_stored_traces

    name = _require_name(args, "pipeline")
    runner = session.runner()
    source = getattr(args, "trace_source", None)
    if source is None:
        stores = runner.entities.get_pipeline_entity(name).run_config.store_trace_info
        source = "stored" if stores else "local"
    if source == "local":
        return pipeline_local(session, args)
    print(session.clean(format_stored_traces(runner.project, runner.entities, name, args.limit)))
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


def dataset_check(session: Session, args: argparse.Namespace) -> int:
    """Run the dataset's declared checks; exit 1 when a check of severity error fails."""
    from dltplus_dagster.project.checks import dataset_check_report

    text, code = dataset_check_report(_dataset(session, args), args.tables)
    print(session.clean(text))
    return code


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
    written = runner.run_transformation(name, **_partition_args(args))
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
    if getattr(args, "action", "show") == "validate":  # `project config validate`
        return project_validate(session, args)
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
    code location loads without calling source factories (e.g. in an image build step). The
    same code fills the Dagster component's defs state (`dg utils refresh-defs-state`)."""
    from dltplus_dagster.project.table_prepare import prepare_table_state

    project = session.project()
    print(f"Preparing {len(project.pipelines)} pipeline(s) of project {project.name}, "
          f"profile {project.current_profile}:")
    prepared = prepare_table_state(project, entities=session.entities())
    for item in prepared.pipelines:
        if item.error is not None:  # dlt appends its lookup trace: the first line only
            print(f"  ! {item.name}: source '{item.source}' could not be built: "
                  f"{session.clean(error_message(item.error).splitlines()[0])}", file=sys.stderr)
            continue
        if item.note is not None:
            print(f"  ({item.name}: the stored schema was not read: "
                  f"{session.clean(error_message(item.note).splitlines()[0])})", file=sys.stderr)
        listed = ", ".join(item.tables) or "(no tables)"
        print(f"  * {item.name}: {listed} ({'cached' if item.cached else 'discovered'})")
    if prepared.failed:
        print(f"Error: {len(prepared.failed)} pipeline(s) could not be prepared; the cache holds "
              f"the others ({prepared.path})", file=sys.stderr)
        return 1
    print(f"Table cache: {prepared.path}")
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
    section = raw.get("project")
    settings = section if isinstance(section, dict) else {}
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


# --- reference forms: local pipeline state, dataset drop, project init/clean, profile info -----


def _confirm(question: str, args: argparse.Namespace) -> bool:
    """`--yes` answers yes; otherwise ask on stdin (no answer, e.g. no terminal, is no)."""
    if getattr(args, "yes", False):
        return True
    print(f"{question} [y/N] ", end="", flush=True)
    try:
        answer = sys.stdin.readline()
    except (OSError, ValueError):
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def pipeline_local(session: Session, args: argparse.Namespace) -> int:
    """dlt's pipeline command `args.verb` on the profile's working dir of the pipeline."""
    from dltplus_dagster.project.local_pipeline import run_command

    name = _require_name(args, "pipeline")
    kwargs: dict[str, Any] = {}
    if args.verb == "drop":
        kwargs = {
            "resources": args.resources,
            "drop_all": args.drop_all,
            "state_paths": args.state_paths,
            "schema_name": args.schema_name,
            "state_only": args.state_only,
        }
    elif args.verb == "load-package":
        kwargs = {"load_id": args.load_id, "action": args.action, "job": None}
    elif args.verb == "schema":
        kwargs = {"format": args.format, "remove_defaults": not args.with_defaults}
    run_command(
        session.entities(),
        name,
        args.verb,
        verbosity=args.verbose,
        yes=getattr(args, "yes", False),
        clean=session.clean,
        **kwargs,
    )
    return 0


def dataset_drop(session: Session, args: argparse.Namespace) -> int:
    """Drop every table of a dataset on its destination, after a confirmation."""
    from dltplus_dagster.project.dataset_drop import drop_dataset, plan_drop

    ds = _dataset(session, args)
    plan = plan_drop(ds)
    where = f"dataset {ds.name} on destination {ds.destination_name}"
    if not plan.tables:
        print(f"Nothing to drop: {where} holds no tables.")
        return 0
    print(f"About to drop {where} (profile {ds.project.current_profile}):")
    print(f"  tables: {', '.join(plan.tables)}")
    for path in plan.working_dirs:
        print(f"  local pipeline state: {path}")
    if not _confirm("Drop them?", args):
        print("Aborted: nothing was dropped.")
        return 1
    drop_dataset(ds, plan)
    print(f"Dropped {where}.")
    return 0


def project_init(session: Session, args: argparse.Namespace) -> int:
    """Scaffold a new project: dlt.yml, sources/, .dlt/config.toml, .dlt/secrets.toml."""
    from dltplus_dagster.project.scaffold import init_project

    target = args.dir or os.getcwd()
    scaffold = init_project(args.source, args.destination, target, args.project_name)
    print(f"Created a dlt project in {scaffold.project_dir}:")
    for rel in scaffold.files:
        print(f"  {rel}")
    for note in scaffold.notes:
        print(f"Before the first run: {note}.")
    print(f"Run it: cd {scaffold.project_dir} && dltplus pipeline my_pipeline run")
    return 0


def project_clean(session: Session, args: argparse.Namespace) -> int:
    """Remove the active profile's local state (data_dir and local_dir), after a confirmation."""
    from dltplus_dagster.project.clean import clean_profile, plan_clean

    project = session.project()
    plan = plan_clean(project, skip_data_dir=args.skip_data_dir)
    if not plan.dirs:
        print(f"Nothing to clean: profile {plan.profile} has no local state.")
        return 0
    print(f"About to remove the local state of profile {plan.profile} "
          "(remote destinations are not touched):")
    for path in plan.dirs:
        print(f"  {path}")
    if not _confirm("Remove them?", args):
        print("Aborted: nothing was removed.")
        return 1
    clean_profile(plan)
    print(f"Removed the local state of profile {plan.profile}.")
    return 0


def profile_info(session: Session, args: argparse.Namespace) -> int:
    """`profile NAME info`: one profile's dirs and marks; without a name, like `list`."""
    from dltplus_dagster.project.profiles import read_pin, select_profile
    from dltplus_dagster.project.project import load_project

    name = args.profile_name
    if not name:
        return profile_list(session, args)
    root = session.project_dir
    available, default = _profile_facts(root)
    if name not in available:
        raise ProfileNotFound(name, available, root)
    current, _ = select_profile(root, session.profile, default)
    marks = [m for m, on in (("current", name == current), ("default", name == default),
                             ("pinned", name == read_pin(root))) if on]
    secrets = [f for f in ("secrets.toml", f"{name}.secrets.toml")
               if os.path.isfile(os.path.join(root, ".dlt", f))]
    print(f"Profile {name}" + (f" ({', '.join(marks)})" if marks else ""))
    try:
        project = load_project(root, name)
    except ProjectError as e:  # e.g. an env var only this profile uses: say why, go on
        project = None
        print(f"  does not load here: {session.clean(str(e))}")
    if project is not None:
        declared = name in (project.manifest.profiles or {})
        print(f"  declared: {'yes' if declared else 'no (implicit)'}")
        print(f"  data dir: {project.data_dir}")
        print(f"  local files dir: {project.local_dir}")
    print(f"  secrets files: {', '.join(secrets) or '(none)'}")
    return 0


PROFILE_VERBS = ("list", "info", "pin")


def _name_first_profile(argv: list[str]) -> list[str]:
    """`profile NAME pin|info` (the reference form) as `profile pin|info NAME`."""
    valued = {"--project", "--profile"}  # options that take the next token as their value
    positions: list[int] = []
    i = 0
    while i < len(argv) and len(positions) < 3:
        if argv[i] in valued:
            i += 2
            continue
        if not argv[i].startswith("-"):
            positions.append(i)
        i += 1
    if len(positions) == 3 and argv[positions[0]] == "profile":
        _, first, second = positions
        if argv[first] not in PROFILE_VERBS and argv[second] in ("pin", "info"):
            argv = list(argv)
            argv[first], argv[second] = argv[second], argv[first]
    return argv


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
        parser: argparse.ArgumentParser = self.verbs.add_parser(
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
    _add_examples(parser)
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
    run.add_argument(
        "--progress",
        type=_progress_name,
        default=None,
        help="show dlt's progress while the run goes: log, tqdm, enlighten or alive_progress",
    )
    _run_option_arguments(run)
    _partition_options(run)
    group.verb("list", pipeline_list, "list the declared pipelines")
    _pipeline_local_commands(group)


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
    check = group.verb("check", dataset_check, "run the declared data-quality checks")
    check.add_argument("--tables", type=_name_list, default=None, help="only these tables")
    group.verb("list", dataset_list, "list declared and implicit datasets")
    drop = group.verb("drop", dataset_drop, "drop every table of the dataset (asks first)")
    _yes_option(drop)


def _transformation_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    group = _Group(
        commands, common, "transformation", "run and list transformations", entity="transformation"
    )
    _partition_options(group.verb("run", transformation_run, "run the transformation"))
    group.verb("list", transformation_list, "list the declared transformations")


def _project_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    group = _Group(commands, common, "project", "validate and inspect the project")
    group.verb("validate", project_validate, "check the manifest and every reference")
    config = group.verb("config", project_config, "print the merged config (secrets redacted)")
    config.add_argument(
        "action", nargs="?", choices=("show", "validate"), default="show",
        help="show (default) the merged config, or validate it",
    )
    config.add_argument("--format", choices=("yaml", "json"), default="yaml")
    config.add_argument("--section", default=None, help="print only this top-level section")
    group.verb("info", project_info, "name, dirs and profiles")
    group.verb("list", project_list, "list installed project packages")
    group.verb("prepare", project_prepare,
               "cache every pipeline's table list, so definitions load without source calls")
    _project_init_clean_commands(group)


def _profile_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    group = _Group(commands, common, "profile", "list and pin profiles")
    group.verb("list", profile_list, "available profiles; current, default and pinned")
    info = group.verb("info", profile_info, "a profile's dirs (profile NAME info), else as list")
    info.add_argument("profile_name", metavar="NAME", nargs="?", help="profile to describe")
    pin = group.verb("pin", profile_pin, "pin a profile for this project (.dlt/profile-name)")
    pin.add_argument("profile_name", metavar="NAME", help="profile to pin")


def _yes_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")


def _run_option_arguments(run: argparse.ArgumentParser) -> None:
    """`--refresh` and `--source-arg`: the run options a Dagster run's config sets as well."""
    from dltplus_dagster.project.run_options import REFRESH_MODES

    run.add_argument(
        "--refresh", choices=REFRESH_MODES, default=None,
        help="drop tables and state before loading (dlt's refresh modes)",
    )
    run.add_argument(
        "--source-arg", dest="source_args", metavar="NAME=VALUE", action="append",
        type=_source_arg, default=None,
        help="an argument for the pipeline's source, coerced to its type (repeatable)",
    )


def _source_arg(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError("expected NAME=VALUE")  # never echo a value
    return name.strip(), value


def _progress_name(text: str) -> str:
    from dltplus_dagster.project.progress import check_progress

    try:
        return check_progress(text)
    except ProjectError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _pipeline_local_commands(group: _Group) -> None:
    """dlt's pipeline commands on the profile's working dir (`dltplus pipeline NAME info`).

    Long because it only declares the verbs and their arguments, one block per dlt command."""
    # `-v` before the name too: dlt's hints print `pipeline -v NAME info`
    group.parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more detail for info/trace/..."
    )
    helps = {
        "info": "state, schemas, resources and load packages of the local working dir",
        "trace": "the last run's trace: steps, timings, load info, errors",
        "schema": "the pipeline's default schema (tables and columns)",
        "failed-jobs": "failed jobs and their error messages in the local load packages",
        "load-package": "a load package (default: the newest) and its jobs",
        "sync": "drop the local state and restore it from the destination (asks first)",
        "drop": "drop tables of resources and reset their state (asks first)",
    }
    for verb, help_text in helps.items():
        parser = group.verb(verb, pipeline_trace if verb == "trace" else pipeline_local, help_text)
        parser.add_argument(
            "-v", "--verbose", action="count", default=argparse.SUPPRESS,
            help="more detail (-vv: even more)",
        )
        if verb in ("sync", "drop"):
            _yes_option(parser)
    trace = group.verbs.choices["trace"]
    where = trace.add_mutually_exclusive_group()
    where.add_argument(
        "--stored", action="store_const", const="stored", dest="trace_source",
        help="the traces stored on the destination (run_config.store_trace_info)",
    )
    where.add_argument(
        "--local", action="store_const", const="local", dest="trace_source",
        help="dlt's trace of the last run in the profile's working dir",
    )
    trace.add_argument(
        "--limit", type=_positive_int, default=10, help="stored attempts to show (default 10)"
    )
    schema = group.verbs.choices["schema"]
    schema.add_argument("--format", choices=("yaml", "json"), default="yaml")
    schema.add_argument("--with-defaults", action="store_true", help="show default hints too")
    package = group.verbs.choices["load-package"]
    package.add_argument("load_id", metavar="LOAD_ID", nargs="?", help="default: the newest")
    package.add_argument(
        "action", nargs="?", choices=("info", "row-counts"), default="info",
        help="info (default) or row-counts (rows loaded by the package, from the destination)",
    )
    drop = group.verbs.choices["drop"]
    drop.add_argument("resources", nargs="*", help="resources to drop (re:REGEX selects)")
    drop.add_argument("--drop-all", action="store_true", help="drop every resource")
    drop.add_argument("--state-paths", nargs="*", default=(), help="source state paths to reset")
    drop.add_argument("--schema", dest="schema_name", default=None, help="schema to drop from")
    drop.add_argument("--state-only", action="store_true", help="reset state, keep the tables")


def _project_init_clean_commands(group: _Group) -> None:
    from dltplus_dagster.project.scaffold_templates import DESTINATIONS, SOURCES

    init = group.verb("init", project_init, "scaffold a new runnable project")
    init.add_argument("source", metavar="SOURCE", help=f"one of {', '.join(SOURCES)}")
    init.add_argument(
        "destination", metavar="DESTINATION", help=f"one of {', '.join(DESTINATIONS)}"
    )
    init.add_argument("dir", metavar="DIR", nargs="?", help="where (default: the current dir)")
    init.add_argument("-n", "--project-name", default=None, help="default: the dir's name")
    clean = group.verb("clean", project_clean, "remove the profile's local state (asks first)")
    clean.add_argument(
        "--skip-data-dir", action="store_true",
        help="keep the data dir (pipeline state); remove only local destination files",
    )
    _yes_option(clean)


EXAMPLES: dict[tuple[str, ...], str] = {
    ("pipeline",): "dltplus pipeline my_pipeline run\n  dltplus pipeline --profile prod "
                   "my_pipeline info",
    ("pipeline", "run"): "dltplus pipeline my_pipeline run --limit 10 --progress log",
    ("pipeline", "list"): "dltplus pipeline list",
    ("pipeline", "info"): "dltplus pipeline my_pipeline info -v",
    ("pipeline", "trace"): "dltplus pipeline my_pipeline trace",
    ("pipeline", "schema"): "dltplus pipeline my_pipeline schema --format json",
    ("pipeline", "failed-jobs"): "dltplus pipeline my_pipeline failed-jobs",
    ("pipeline", "load-package"): "dltplus pipeline my_pipeline load-package",
    ("pipeline", "sync"): "dltplus pipeline my_pipeline sync --yes",
    ("pipeline", "drop"): "dltplus pipeline my_pipeline drop items --yes",
    ("dataset",): "dltplus dataset my_dataset row-counts",
    ("dataset", "row-counts"): "dltplus dataset my_dataset row-counts --dlt-tables",
    ("dataset", "head"): "dltplus dataset my_dataset head items --limit 10",
    ("dataset", "info"): "dltplus dataset my_dataset info",
    ("dataset", "list"): "dltplus dataset list",
    ("dataset", "drop"): "dltplus dataset my_dataset drop --yes",
    ("transformation",): "dltplus transformation my_transformation run",
    ("transformation", "run"): "dltplus transformation my_transformation run",
    ("transformation", "list"): "dltplus transformation list",
    ("project",): "dltplus project --profile prod config show",
    ("project", "validate"): "dltplus project --profile prod validate",
    ("project", "config"): "dltplus project config show --format json --section pipelines\n"
                           "  dltplus project config validate",
    ("project", "info"): "dltplus project info",
    ("project", "list"): "dltplus project list",
    ("project", "prepare"): "dltplus project prepare",
    ("project", "init"): "dltplus project init arrow duckdb my_project",
    ("project", "clean"): "dltplus project --profile dev clean --yes",
    ("profile",): "dltplus profile prod pin",
    ("profile", "list"): "dltplus profile list",
    ("profile", "info"): "dltplus profile prod info",
    ("profile", "pin"): "dltplus profile prod pin   (or: dltplus profile pin prod)",
}
"""`--help` examples per command (group) and verb."""


def _add_examples(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> None:
    """Put `EXAMPLES` into the `--help` of every command and verb (an epilog, shown as is)."""
    for action in parser._actions:  # argparse keeps its subparsers only here
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, sub in action.choices.items():
            key = (*path, name)
            if key in EXAMPLES:
                sub.epilog = f"example:\n  {EXAMPLES[key]}"
                sub.formatter_class = argparse.RawDescriptionHelpFormatter
            _add_examples(sub, key)


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
    argv = _name_first_profile(list(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or a usage error argparse already printed
        return e.code if isinstance(e.code, int) else 2
    session = Session(args.project, getattr(args, "profile", None))
    try:
        code: int = args.handler(session, args)
        return code
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
