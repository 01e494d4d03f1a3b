"""Turn pydantic validation errors into short messages that name the value and the expectation.

pydantic's own wording ("Input should be greater than 0") does not say what was given; the
click style does: ``must be > 0 (got -3)``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

_TYPE_WORDS = {
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}
_BOUNDS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}


def describe_error(error: Mapping[str, Any]) -> str:
    """Message for one pydantic error dict (``type``, ``loc``, ``msg``, ``input``, ``ctx``)."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    given = _given(error.get("input"))
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        allowed = allowed_keys(error["loc"][:-1])
        listing = f" (expected one of: {', '.join(allowed)})" if allowed else ""
        return f"unknown key{listing}"
    if kind in _BOUNDS:
        name, symbol = _BOUNDS[kind]
        bound = ctx.get(name)
        shown = f"{bound:g}" if isinstance(bound, (int, float)) else bound
        return f"must be {symbol} {shown} {given}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')} {given}"
    if kind in _TYPE_WORDS:
        return f"{_TYPE_WORDS[kind]} {given}"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s)"
    if kind == "value_error":
        return str(ctx.get("error") or error["msg"]).removeprefix("Value error, ")
    return str(error["msg"])


def _given(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f"(got a {'mapping' if isinstance(value, dict) else 'list'})"
    return f"(got {value!r})"


def allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at ``loc`` accepts, by their spelling in YAML (aliases)."""
    from phase5site.runspec.models import RunSpec

    model: Any = RunSpec
    for part in loc:
        model = _child_type(model, part)
        if model is None:
            return []
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [info.alias or name for name, info in model.model_fields.items()]
    return []


def _child_type(model: Any, part: Any) -> Any:
    if isinstance(part, int):
        return _unwrap(model, container=True)
    model = _unwrap(model, container=False)
    if isinstance(model, type) and issubclass(model, BaseModel):
        for name, info in model.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
    return None


def _unwrap(annotation: Any, *, container: bool) -> Any:
    """Strip ``Optional``/``Annotated``; with ``container``, step into ``list[X]``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = options[0]
        elif container and origin is list:
            annotation = typing.get_args(annotation)[0]
            container = False
        else:
            return annotation
