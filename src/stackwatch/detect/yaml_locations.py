"""YAML with source locations, so rule errors can say ``file:line: field: reason``.

The loader composes PyYAML's node tree (which carries marks) and builds plain dicts and
lists that remember where they came from: ``LocDict.line`` (the mapping's first line)
and ``LocDict.key_line(key)`` (the line of one key). Duplicate keys, which PyYAML would
silently overwrite, are an error.
"""

from __future__ import annotations

from typing import Any

import yaml

from stackwatch.core.errors import RuleError


class LocDict(dict[str, Any]):
    """A mapping from a YAML file that knows its own line and the line of each key."""

    line: int = 0
    path: str = ""
    key_lines: dict[str, int]

    def key_line(self, key: str) -> int:
        return getattr(self, "key_lines", {}).get(key, self.line)


class LocList(list[Any]):
    """A sequence from a YAML file that knows its line and the line of each item."""

    line: int = 0
    path: str = ""
    item_lines: list[int]

    def item_line(self, index: int) -> int:
        lines = getattr(self, "item_lines", [])
        return lines[index] if index < len(lines) else self.line


class _LocLoader(yaml.SafeLoader):
    path: str = ""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LocDict:  # type: ignore[override]
        result = LocDict()
        result.line = node.start_mark.line + 1
        result.path = self.path
        result.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key)
            line = key_node.start_mark.line + 1
            if key in result:
                raise RuleError(f"duplicate key {key!r}", self.path, line, key)
            result[key] = self.construct_object(value_node, deep=True)
            result.key_lines[key] = line
        return result

    def construct_loc_sequence(self, node: yaml.SequenceNode) -> LocList:
        result = LocList(self.construct_object(child, deep=True) for child in node.value)
        result.line = node.start_mark.line + 1
        result.path = self.path
        result.item_lines = [child.start_mark.line + 1 for child in node.value]
        return result


def _construct_map(loader: _LocLoader, node: yaml.MappingNode) -> LocDict:
    return loader.construct_mapping(node, deep=True)


_LocLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_LocLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _LocLoader.construct_loc_sequence)
# Timestamps stay text: rules and vectors parse them explicitly (and tz-aware).
_LocLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(text: str, path: str = "") -> Any:
    """Parse ``text``; mappings become LocDict and sequences LocList. YAML syntax errors
    become RuleError with the file and line."""
    try:
        loader = _LocLoader(text)  # reads the whole text: a control character fails here
    except yaml.YAMLError as exc:
        raise RuleError(f"invalid YAML: {str(exc).splitlines()[0]}", path) from None
    loader.path = path
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise RuleError(f"invalid YAML: {exc.problem or exc}", path, line) from None
    except yaml.YAMLError as exc:
        raise RuleError(f"invalid YAML: {exc}", path) from None
    finally:
        loader.dispose()
