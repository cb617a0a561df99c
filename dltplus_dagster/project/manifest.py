"""Reading `dlt.yml`: safe YAML, `!include`, and the source location of every key.

The loader walks YAML nodes itself (instead of `yaml.safe_load`) so that each key path of the
resulting document maps to the file and line it came from. Validation and placeholder errors
use that map to point at the exact place, also inside included files.
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
    """Safe loader: no Python object tags; `!include` is handled by the node walker."""


_FastLoader = getattr(yaml, "CSafeLoader", _Loader)
"""libyaml's parser where PyYAML has it: composes a 500-pipeline manifest ~4x faster. A file
it rejects is parsed again by `_Loader`, whose error messages are PyYAML's usual ones."""


_Loader.add_constructor(INCLUDE_TAG, lambda loader, node: None)  # walker handles it


def _single_node(stream: Any, loader_cls: Any) -> Node | None:
    loader = loader_cls(stream)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _compose(path: str) -> Node | None:
    try:
        with open(path, encoding="utf-8") as f:
            try:
                return _single_node(f, _FastLoader)
            except yaml.YAMLError:
                if _FastLoader is _Loader:
                    raise
                f.seek(0)
                return _single_node(f, _Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        problem = " ".join(str(x) for x in (e.context, e.problem) if x)
        raise ManifestError(f"YAML syntax error: {problem}", file=path, line=line) from None
    except yaml.YAMLError as e:
        raise ManifestError(f"YAML error: {e}", file=path) from None
    except UnicodeDecodeError as e:
        raise ManifestError(f"not UTF-8 text: {e}", file=path) from None


class _Walker:
    """Turns a node tree into Python values, recording locations and expanding includes."""

    def __init__(self, locations: Locations) -> None:
        self.locations = locations
        self.stack: list[str] = []
        self.scalar_loader = _Loader("")

    def load_file(self, path: str, prefix: KeyPath) -> Any:
        path = os.path.abspath(path)
        if path in self.stack:
            chain = " -> ".join(self.stack + [path])
            raise ManifestError(f"!include cycle: {chain}", file=self.stack[-1])
        self.stack.append(path)
        try:
            node = _compose(path)
            return {} if node is None else self.walk(node, prefix, path)
        finally:
            self.stack.pop()

    def walk(self, node: Node, path: KeyPath, file: str) -> Any:
        self.locations.add(path, file, node.start_mark.line + 1)
        if node.tag == INCLUDE_TAG:
            return self._include(node, path, file)
        if isinstance(node, MappingNode):
            if node.tag != "tag:yaml.org,2002:map":
                raise self._bad_tag(node, path, file)
            explicit = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
            self.scalar_loader.flatten_mapping(node)  # YAML merge keys (<<: *anchor)
            n_merged = len(node.value) - explicit  # merged pairs come first; explicit ones win
            merged: set[str] = set()
            result: dict[str, Any] = {}
            for i, (key_node, value_node) in enumerate(node.value):
                key = self._scalar(key_node, path, file)
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    raise ManifestError(
                        f"mapping keys must be plain scalars, got {key!r}",
                        file=file,
                        line=key_node.start_mark.line + 1,
                        key=format_path(path) or None,
                    )
                key = str(key)
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

    def _include(self, node: Node, path: KeyPath, file: str) -> Any:
        if not isinstance(node, ScalarNode) or not node.value:
            raise ManifestError(
                "!include takes a file path", file=file, line=node.start_mark.line + 1,
                key=format_path(path) or None,
            )
        target = os.path.join(os.path.dirname(file), node.value)
        if os.path.abspath(target) in self.stack:
            chain = " -> ".join(self.stack + [os.path.abspath(target)])
            raise ManifestError(
                f"!include cycle: {chain}",
                file=file,
                line=node.start_mark.line + 1,
                key=format_path(path) or None,
            )
        if not os.path.isfile(target):
            raise ManifestError(
                f"!include file not found: {target}",
                file=file,
                line=node.start_mark.line + 1,
                key=format_path(path) or None,
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

    @staticmethod
    def _bad_tag(node: Node, path: KeyPath, file: str) -> ManifestError:
        return ManifestError(
            f"YAML tag {node.tag!r} is not allowed (only plain YAML and !include)",
            file=file,
            line=node.start_mark.line + 1,
            key=format_path(path) or None,
        )


def load_manifest(path: str) -> tuple[dict[str, Any], Locations]:
    """Load a manifest file with includes expanded. An empty file is `{}`."""
    locations = Locations()
    doc = _Walker(locations).load_file(path, ())
    if not isinstance(doc, dict):
        raise ManifestError(
            f"the manifest must be a mapping of sections, got {type(doc).__name__}", file=path,
            line=1,
        )
    return doc, locations
