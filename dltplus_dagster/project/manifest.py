"""Reading `dlt.yml`: safe YAML, `!include`, and the source location of every key.

The loader walks YAML nodes itself (instead of `yaml.safe_load`) so that each key path of the
resulting document maps to the file and line it came from. Validation and placeholder errors
use that map to point at the exact place, also inside included files.

Hostile input is bounded: a file over `MAX_FILE_BYTES` is refused before parsing, nesting deeper
than `MAX_DEPTH` and alias expansion ("billion laughs") past `MAX_NODES` are located errors, and
`!include` stays inside the project dir unless a path is listed in `INCLUDE_PATHS_ENV`.
Mapping keys are names: a plain key is kept as the text written (`on:` is "on", `010:` is
"010"), never YAML 1.1's bool/int/null reading of it. Values keep YAML's normal typing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from dltplus_dagster.project.errors import ManifestError

MANIFEST_NAME = "dlt.yml"
INCLUDE_TAG = "!include"

MAX_FILE_BYTES = 10 * 1024 * 1024
"""A manifest or included file larger than this is refused before it is parsed."""
MAX_DEPTH = 100
"""Deepest nesting of mappings and lists (across includes) a manifest may have."""
MAX_NODES = 1_000_000
"""Most YAML nodes a manifest may expand to, aliases and includes counted at every use."""
MAX_INCLUDES = 1_000
"""Most `!include` loads one manifest may do (an include used twice counts twice)."""
INCLUDE_PATHS_ENV = "DLTPLUS_INCLUDE_PATHS"
"""Extra dirs (os.pathsep-separated) `!include` may read from, besides the project dir."""

KeyPath = tuple[str, ...]


@dataclass
class Locations:
    """Key path -> (file, 1-based line). Paths use str keys; list items use their index."""

    entries: dict[KeyPath, tuple[str, int]] = field(default_factory=dict)

    def add(self, path: KeyPath, file: str, line: int) -> None:
        self.entries.setdefault(path, (file, line))

    def find(self, path: KeyPath) -> tuple[str | None, int | None]:
        """Location of `path`, or of its nearest located ancestor."""
        while True:
            if path in self.entries:
                return self.entries[path]
            if not path:
                return None, None
            path = path[:-1]

    def rebased(self, prefix: KeyPath) -> Locations:
        """Locations below `prefix`, with `prefix` cut off (used for profile bodies)."""
        n = len(prefix)
        return Locations({p[n:]: loc for p, loc in self.entries.items() if p[:n] == prefix})


def format_path(path: KeyPath) -> str:
    return ".".join(str(p) for p in path)


def error_at(locations: Locations, path: KeyPath, message: str) -> ManifestError:
    file, line = locations.find(path)
    return ManifestError(message, file=file, line=line, key=format_path(path) or None)


class _Loader(yaml.SafeLoader):
    """Safe loader: no Python object tags; `!include` is handled by the node walker.

    PyYAML's composer recurses once per nesting level: past `MAX_DEPTH` it stops with a
    located error instead of a RecursionError (libyaml's composer has its own limit)."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 1:
                # types-PyYAML leaves Parser.peek_event unannotated
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_FastLoader = getattr(yaml, "CSafeLoader", _Loader)
"""libyaml's parser where PyYAML has it: composes a 500-pipeline manifest ~4x faster. A file
it rejects is parsed again by `_Loader`, whose error messages are PyYAML's usual ones."""


_Loader.add_constructor(INCLUDE_TAG, lambda loader, node: None)  # walker handles it


def _single_node(stream: Any, loader_cls: Any) -> Node | None:
    loader = loader_cls(stream)
    try:
        node: Node | None = loader.get_single_node()
        return node
    finally:
        loader.dispose()


def _read_text(path: str) -> str:
    """The file's text, refused when larger than `MAX_FILE_BYTES` or not UTF-8."""
    chunks: list[bytes] = []
    size = 0
    try:
        with open(path, "rb") as f:
            # in chunks: bounded also for files whose size lies (/proc), and no 10 MB buffer
            while chunk := f.read(1 << 16):
                size += len(chunk)
                if size > MAX_FILE_BYTES:
                    raise ManifestError(
                        f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB "
                        "(MAX_FILE_BYTES); refusing to parse it",
                        file=path,
                    )
                chunks.append(chunk)
    except OSError as e:
        raise ManifestError(f"cannot read the file: {e.strerror}", file=path) from None
    data = b"".join(chunks)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ManifestError(
            f"not UTF-8 text (byte {e.start}: {e.reason})", file=path, line=line
        ) from None


def _compose(path: str) -> Node | None:
    text = _read_text(path)
    try:
        try:
            return _single_node(text, _FastLoader)
        except yaml.YAMLError as e:
            if _FastLoader is _Loader:
                raise
            if "maximum nesting depth" in str(getattr(e, "problem", "")):
                mark = getattr(e, "problem_mark", None)  # a MarkedYAMLError's
                raise ManifestError(
                    f"nested deeper than {MAX_DEPTH} levels",
                    file=path, line=mark.line + 1 if mark else None,
                ) from None
            return _single_node(text, _Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        problem = " ".join(str(x) for x in (e.context, e.problem) if x)
        raise ManifestError(f"YAML syntax error: {problem}", file=path, line=line) from None
    except yaml.YAMLError as e:
        raise ManifestError(f"YAML error: {e}", file=path) from None


def _expanded_size(root: Node, limit: int, file: str) -> int:
    """Nodes `root` expands to with every alias use counted, refusing a total past `limit`.

    Linear in the distinct nodes (sizes of collections are memoized), so an alias bomb that
    would expand to billions of nodes is refused after reading only the few hundred the file
    really holds. An alias inside its own anchor (`&a [*a]`) is refused as recursive.
    """
    sizes: dict[int, int] = {}
    expanding: set[int] = set()
    stack: list[Node] = [root]
    while stack:
        node = stack[-1]
        nid = id(node)
        if nid in sizes:
            stack.pop()
            continue
        children = (
            [n for pair in node.value for n in pair]
            if isinstance(node, MappingNode)
            else node.value if isinstance(node, SequenceNode) else []
        )
        if nid not in expanding:  # first visit: expand the collections below first
            expanding.add(nid)
            for child in children:
                if id(child) in expanding:
                    raise ManifestError(
                        "recursive alias: an alias (*name) is used inside its own anchor",
                        file=file, line=child.start_mark.line + 1,
                    )
                if isinstance(child, (MappingNode, SequenceNode)) and id(child) not in sizes:
                    stack.append(child)
            continue
        stack.pop()  # second visit: every collection below has its size
        expanding.discard(nid)
        sizes[nid] = 1 + sum(sizes.get(id(child), 1) for child in children)
        if sizes[nid] > limit:
            raise ManifestError(
                f"the document expands to more than {MAX_NODES:,} YAML nodes (MAX_NODES): "
                "are aliases (*name) nested to multiply it?",
                file=file, line=node.start_mark.line + 1,
            )
    return sizes.get(id(root), 1)


def include_roots(project_dir: str) -> list[str]:
    """Real paths `!include` may read below: the project dir and `INCLUDE_PATHS_ENV` entries."""
    extra = [p for p in os.environ.get(INCLUDE_PATHS_ENV, "").split(os.pathsep) if p.strip()]
    return [os.path.realpath(project_dir)] + [
        os.path.realpath(os.path.join(project_dir, os.path.expanduser(p))) for p in extra
    ]


def _inside(path: str, roots: list[str]) -> bool:
    return any(os.path.commonpath([path, root]) == root for root in roots)


class _Walker:
    """Turns a node tree into Python values, recording locations and expanding includes."""

    def __init__(self, locations: Locations, roots: list[str]) -> None:
        self.locations = locations
        self.roots = roots
        self.stack: list[str] = []
        self.scalar_loader = _Loader("")
        self.nodes = 0
        """Nodes walked so far, every alias and include use counted."""
        self.file_roots: list[Node] = []
        self.seen: set[int] = set()
        """Collections walked once: a second walk is an alias use."""
        self.checked: set[int] = set()
        self.includes = 0
        self.merged_counts: dict[int, int] = {}

    def load_file(self, path: str, prefix: KeyPath) -> Any:
        path = os.path.abspath(path)
        real = os.path.realpath(path)
        if real in self.stack:
            chain = " -> ".join(self.stack + [real])
            raise ManifestError(f"!include cycle: {chain}", file=self.stack[-1])
        self.stack.append(real)
        try:
            node = _compose(path)
            if node is None:
                return {}
            self.file_roots.append(node)
            try:
                return self.walk(node, prefix, path)
            finally:
                self.file_roots.pop()
        finally:
            self.stack.pop()

    def _count(self, node: Node, file: str) -> None:
        """Bound the expansion: a collection walked twice is an alias use, so the first one
        sizes the whole file (before its expansion can grow); includes add up in `nodes`."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ManifestError(
                f"the manifest expands to more than {MAX_NODES:,} YAML nodes (MAX_NODES)",
                file=file, line=node.start_mark.line + 1,
            )
        if not isinstance(node, (MappingNode, SequenceNode)):
            return
        if id(node) not in self.seen:
            self.seen.add(id(node))
            return
        root = self.file_roots[-1]
        if id(root) not in self.checked:
            self.checked.add(id(root))
            _expanded_size(root, MAX_NODES - self.nodes, file)

    def walk(self, node: Node, path: KeyPath, file: str) -> Any:
        self.locations.add(path, file, node.start_mark.line + 1)
        self._count(node, file)
        if len(path) > MAX_DEPTH:
            raise ManifestError(
                f"nested deeper than {MAX_DEPTH} levels", file=file,
                line=node.start_mark.line + 1, key=format_path(path[:3]) + "...",
            )
        if node.tag == INCLUDE_TAG:
            return self._include(node, path, file)
        if isinstance(node, MappingNode):
            if node.tag != "tag:yaml.org,2002:map":
                raise self._bad_tag(node, path, file)
            if id(node) not in self.merged_counts:  # an aliased mapping is flattened once
                explicit = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
                self.scalar_loader.flatten_mapping(node)  # YAML merge keys (<<: *anchor)
                self.merged_counts[id(node)] = len(node.value) - explicit
            n_merged = self.merged_counts[id(node)]  # merged pairs come first; explicit win
            merged: set[str] = set()
            result: dict[str, Any] = {}
            for i, (key_node, value_node) in enumerate(node.value):
                key = self._key(key_node, path, file)
                if key in merged:  # an explicit key (or a later merge) overrides a merged one
                    merged.discard(key)
                    sub = path + (key,)
                    for p in [p for p in self.locations.entries if p[: len(sub)] == sub]:
                        del self.locations.entries[p]
                elif key in result:
                    raise ManifestError(
                        "duplicate key",
                        file=file,
                        line=key_node.start_mark.line + 1,
                        key=format_path(path + (key,)),
                    )
                # errors about an entry point at its key (a block value starts a line later)
                self.locations.add(path + (key,), file, key_node.start_mark.line + 1)
                result[key] = self.walk(value_node, path + (key,), file)
                if i < n_merged:
                    merged.add(key)
            return result
        if isinstance(node, SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                raise self._bad_tag(node, path, file)
            return [self.walk(n, path + (str(i),), file) for i, n in enumerate(node.value)]
        return self._scalar(node, path, file)

    def _key(self, node: Node, path: KeyPath, file: str) -> str:
        """A mapping key as the text written: keys are names (`on`, `no`, `010` stay strings)."""
        if isinstance(node, ScalarNode) and node.tag != INCLUDE_TAG:
            if node.tag not in _Loader.yaml_constructors:  # only plain YAML tags
                raise self._bad_tag(node, path, file)
            if node.value.strip():
                return str(node.value)
            problem = "an empty mapping key is not a name"
        else:
            problem = "expected a plain value here: a mapping key is a name"
        raise ManifestError(
            problem, file=file, line=node.start_mark.line + 1, key=format_path(path) or None
        )

    def _include(self, node: Node, path: KeyPath, file: str) -> Any:
        line = node.start_mark.line + 1
        where = format_path(path) or None
        if not isinstance(node, ScalarNode) or not node.value:
            raise ManifestError("!include takes a file path", file=file, line=line, key=where)
        target = os.path.join(os.path.dirname(file), node.value)
        real = os.path.realpath(target)  # symlinks resolved: escapes and cycles show
        if real in self.stack:
            chain = " -> ".join(self.stack + [real])
            raise ManifestError(f"!include cycle: {chain}", file=file, line=line, key=where)
        if not _inside(real, self.roots):
            raise ManifestError(
                f"!include {node.value!r} resolves to {real}, outside the project dir; list its "
                f"dir in {INCLUDE_PATHS_ENV} to allow it",
                file=file, line=line, key=where,
            )
        if not os.path.isfile(target):
            raise ManifestError(
                f"!include file not found: {target}", file=file, line=line, key=where
            )
        self.includes += 1
        if self.includes > MAX_INCLUDES:
            raise ManifestError(
                f"more than {MAX_INCLUDES} !include loads (MAX_INCLUDES)",
                file=file, line=line, key=where,
            )
        return self.load_file(target, path)

    def _scalar(self, node: Node, path: KeyPath, file: str) -> Any:
        if not isinstance(node, ScalarNode):
            raise ManifestError(
                "expected a plain value here",
                file=file,
                line=node.start_mark.line + 1,
                key=format_path(path) or None,
            )
        try:
            return self.scalar_loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            raise self._bad_tag(node, path, file) from None
        except (ValueError, TypeError, OverflowError):  # e.g. `2024-13-45` read as a date
            raise ManifestError(
                f"not a valid {node.tag.rsplit(':', 1)[-1]} value; quote it if it is text",
                file=file, line=node.start_mark.line + 1, key=format_path(path) or None,
            ) from None

    @staticmethod
    def _bad_tag(node: Node, path: KeyPath, file: str) -> ManifestError:
        return ManifestError(
            f"YAML tag {node.tag!r} is not allowed (only plain YAML and !include)",
            file=file,
            line=node.start_mark.line + 1,
            key=format_path(path) or None,
        )


def load_manifest(path: str) -> tuple[dict[str, Any], Locations]:
    """Load a manifest file with includes expanded. An empty file is `{}`.

    `!include` may read files below the manifest's dir and the dirs in `INCLUDE_PATHS_ENV`.
    """
    locations = Locations()
    roots = include_roots(os.path.dirname(os.path.abspath(path)))
    doc = _Walker(locations, roots).load_file(path, ())
    if not isinstance(doc, dict):
        raise ManifestError(
            f"the manifest must be a mapping of sections, got {type(doc).__name__}", file=path,
            line=1,
        )
    return doc, locations
