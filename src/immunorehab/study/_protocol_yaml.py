"""Reading protocol YAML safely: libyaml when available, duplicate keys refused, errors with line/column."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml

from immunorehab.errors import Problem, ProtocolError

__all__ = ["read_yaml"]

try:  # libyaml's parser when available (about 4x faster), same safe constructor
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]


class _UniqueKeyLoader(_SafeLoader):
    """A safe loader that rejects duplicate mapping keys instead of keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            if isinstance(key, Hashable):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(text: str, source: str) -> object:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}: line {mark.line + 1}, column {mark.column + 1}" if mark else source
        what = ": ".join(part for part in (exc.context, exc.problem) if part)
        raise ProtocolError(f"{source} is not valid YAML", [Problem(where, what)]) from exc
    except yaml.YAMLError as exc:
        raise ProtocolError(f"{source} is not valid YAML", [Problem(source, str(exc))]) from exc
