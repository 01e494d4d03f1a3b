"""Limits on the shape of a YAML run spec, checked on the event stream before anything is built.

Two YAML documents of a few hundred bytes can take a loader down: aliases of aliases
("billion laughs": nine levels of ten ``*a`` each name 10^9 values, which the spec's
converter would expand one by one, hanging with gigabytes of memory) and deep nesting
(``[[[[...]]]]`` 5000 levels deep overflows the recursive composer: a RecursionError).
The parser's event stream is flat and cheap, so both are measured there, and a spec that
exceeds them is a located spec error before the composer ever runs. A real spec nests
about six levels and uses a handful of aliases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    MappingStartEvent,
    NodeEvent,
)

MAX_DEPTH = 64
MAX_ALIAS_VALUES = 10_000  # values (scalars and collections) that aliases stand for, in all


class ShapeError(Exception):
    """``line``/``column`` (0-based), ``path`` of the offending node, and the message."""

    def __init__(self, line: int, column: int, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.path, self.message = line, column, path, message


@dataclass
class _Frame:
    """An open mapping or sequence: where its next child goes and how many values it holds."""

    path: tuple[str | int, ...]
    anchor: str | None
    mapping: bool
    values: int = 1
    index: int = 0  # sequence: the next item; mapping: even = a key comes next
    key: Any = None


@dataclass
class _Walk:
    frames: list[_Frame] = field(default_factory=list)
    anchored: dict[str, int] = field(default_factory=dict)  # anchor -> values it stands for
    alias_values: int = 0

    def child_path(self) -> tuple[str | int, ...]:
        if not self.frames:
            return ()
        parent = self.frames[-1]
        if parent.mapping:
            return (*parent.path, str(parent.key))
        return (*parent.path, parent.index)

    def finished(self, values: int, scalar: Any = None) -> None:
        """A child of the innermost frame is complete: count it and move past it."""
        if not self.frames:
            return
        parent = self.frames[-1]
        parent.values += values
        if parent.mapping and parent.index % 2 == 0:
            parent.key = scalar if scalar is not None else "?"
        parent.index += 1


def check_shape(events: Any) -> None:
    """Raise ``ShapeError`` at the first node nested deeper than ``MAX_DEPTH`` or the alias
    that takes the expansion over ``MAX_ALIAS_VALUES``."""
    walk = _Walk()
    for event in events:
        if isinstance(event, CollectionStartEvent):
            path = walk.child_path()
            if len(walk.frames) >= MAX_DEPTH:
                mark = event.start_mark
                raise ShapeError(mark.line, mark.column, path[:1],
                                 f"YAML nested deeper than {MAX_DEPTH} levels; a run spec needs a few")
            walk.frames.append(_Frame(path, event.anchor, isinstance(event, MappingStartEvent)))
        elif isinstance(event, CollectionEndEvent):
            frame = walk.frames.pop()
            if frame.anchor is not None:
                walk.anchored[frame.anchor] = frame.values
            walk.finished(frame.values)
        elif isinstance(event, AliasEvent):
            values = walk.anchored.get(event.anchor, 1)
            walk.alias_values += values
            if walk.alias_values > MAX_ALIAS_VALUES:
                mark = event.start_mark
                raise ShapeError(mark.line, mark.column, walk.child_path(),
                                 f"YAML aliases stand for more than {MAX_ALIAS_VALUES} values (an "
                                 "alias bomb?); write the values out, or use fewer aliases")
            walk.finished(values)
        elif isinstance(event, NodeEvent):  # a scalar
            if event.anchor is not None:
                walk.anchored[event.anchor] = 1
            walk.finished(1, getattr(event, "value", None))
