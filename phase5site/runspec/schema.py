"""JSON Schema of run specs, for editors' YAML language servers and for the reference docs."""

from __future__ import annotations

from typing import Any

from phase5site.runspec.models import RunSpec

SCHEMA_ID = "https://phase5site.invalid/schemas/runspec-v1.json"


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a run spec, with YAML spellings (aliases) as keys."""
    schema = RunSpec.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "phase5site run spec"
    return schema
