"""The reference page, generated from the code so it cannot drift: every run-spec key (from
``RunSpec.model_json_schema()``) and every CLI command with its help and options.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phase5site.site.escape import html_text, md_text
from phase5site.site.fmt import table


@dataclass(frozen=True)
class CommandHelp:
    """One command's entry on the reference page: ``phase5site slo finalize`` and its help."""

    title: str
    help_text: str


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` and unwrap ``anyOf [X, null]`` so nested models are walked."""
    if "$ref" in schema:
        return defs[schema["$ref"].rsplit("/", 1)[-1]]
    for key in ("anyOf", "allOf"):
        for option in schema.get(key, []):
            if "$ref" in option:
                return defs[option["$ref"].rsplit("/", 1)[-1]]
            if option.get("type") == "array" and "$ref" in option.get("items", {}):
                return {"type": "array", "items": option["items"]}
    return schema


def _type_text(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "anyOf" in schema:
        return " or ".join(_type_text(option) for option in schema["anyOf"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type_text(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema:
        return f"map of {_type_text(schema['additionalProperties'] or {})}"
    return str(kind)


def spec_keys(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(dotted key, property schema, required) for every key of the run spec, depth first.
    List items are written ``phases[].rate``.

    Example: ``RunSpec`` yields ``("version", {...}, True)``, ..., ``("target.auth.bearer", ...)``.
    """
    defs = schema.get("$defs", {})

    def walk(node: dict[str, Any], prefix: str) -> Iterator[tuple[str, dict[str, Any], bool]]:
        required = set(node.get("required", []))
        for name, prop in node.get("properties", {}).items():
            key = f"{prefix}{name}"
            yield key, prop, name in required
            target = _resolve(prop, defs)
            if target.get("type") == "array":
                items = _resolve(target.get("items", {}), defs)
                if "properties" in items:
                    yield from walk(items, f"{key}[].")
            elif "properties" in target:
                yield from walk(target, f"{key}.")

    yield from walk(schema, "")


def _spec_section() -> str:
    from phase5site.runspec.models import RunSpec

    schema = RunSpec.model_json_schema()
    defs = schema.get("$defs", {})
    rows = []
    for key, prop, required in spec_keys(schema):
        description = prop.get("description") or _resolve(prop, defs).get("description", "")
        default = json.dumps(prop["default"]) if "default" in prop else ("required" if required else "—")
        rows.append((key, _type_text(prop), default, " ".join(str(description).split())))
    return str(table(["Key", "Type", "Default", "Meaning"], rows, css="p5-reference"))


def _command_section(commands: Sequence[CommandHelp]) -> str:
    if not commands:
        return ("<p>This build was made without the command reference (it is filled in when "
                "<code>phase5site build</code> or <code>phase5site run</code> builds the site).</p>")
    parts = []
    for command in commands:
        parts.append(f"### {md_text(command.title)}")
        parts.append(f'<pre class="p5-help"><code>{html_text(command.help_text)}</code></pre>')
    return "\n\n".join(parts)


def _example_section(example: Path | None) -> list[str]:
    if example is None or not example.is_file():
        return []
    text = example.read_text(encoding="utf-8")
    return [f"## Example spec ({html_text(example.name)})",
            f"<p>A complete spec to copy from: <code>{html_text(example.name)}</code>.</p>",
            f'<pre class="p5-example"><code>{html_text(text)}</code></pre>']


def render_reference(example: Path | None = None, commands: Sequence[CommandHelp] = ()) -> str:
    """The reference page; ``example`` is a run spec shown in full (runspecs/demo.yaml).

    ``commands`` is the help text of every command, handed in by the CLI (the site never
    imports the CLI: the CLI builds the site)."""
    return "\n\n".join([
        "# Reference",
        ("<p>Generated from the code at every build: the run-spec keys come from the spec's JSON "
         "Schema (<code>phase5site schema</code> prints it), the commands from the CLI itself.</p>"),
        "## Run-spec keys", _spec_section(),
        *_example_section(example),
        "## Commands", _command_section(commands),
    ]) + "\n"
