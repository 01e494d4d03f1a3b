"""Read a YAML run spec into a validated ``RunSpec``, reporting every problem with its place.

ruamel.yaml's round-trip loader keeps the line and column of every key and value; the tree
is interpolated and turned into plain data while those positions are recorded by path, so a
pydantic error at ``("phases", 1, "rate")`` is reported as
``runspecs/x.yaml:14:11: phases[1].rate: must be > 0 (got -3)``.
"""

from __future__ import annotations

import hashlib
import os
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from phase5site.errors import SpecError
from phase5site.runspec.interpolate import UnsetVariable, interpolate, is_secret_name
from phase5site.runspec.messages import describe_error
from phase5site.runspec.models import RunSpec
from phase5site.runspec.redaction import MIN_SECRET_CHARS, REDACTED, redact, redact_tree
from phase5site.runspec.yamlshape import ShapeError, check_shape

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec with what is needed to handle it safely."""

    spec: RunSpec
    path: Path
    secrets: frozenset[str]
    sha256: str
    env_refs: dict[str, int] = field(default_factory=dict)  # variable -> first line using it
    secret_paths: tuple[str, ...] = ()  # e.g. "target.auth.bearer (from PROD_JWT)"
    positions: Mapping[Path_, tuple[int, int]] = field(default_factory=dict, repr=False)  # 0-based

    def at(self, path: Path_, message: str) -> str:
        """``message`` located like a validation error: ``file:line:col: key.path: message``."""
        return locate(str(self.path), self.positions, path, message)

    def __repr__(self) -> str:
        return f"LoadedSpec(path={str(self.path)!r}, name={self.spec.name!r}, sha256={self.sha256[:12]!r})"

    def redacted(self) -> dict[str, Any]:
        """The spec as JSON-able data with every secret replaced by ``***``."""
        data = self.spec.model_dump(mode="json", by_alias=True)
        for section, key in _TOKEN_KEYS:
            auth = data[section]["auth"]
            if auth.get(key) is not None:
                auth[key] = REDACTED
        for request in data["target"]["requests"]:
            for name in request["secret_headers"]:
                request["headers"][name] = REDACTED
        return redact_tree(data, self.secrets)


def load_spec(path: str | Path, env: Mapping[str, str] | None = None) -> LoadedSpec:
    """Load and validate the spec at ``path``; ``env`` defaults to the process environment."""
    spec_path = Path(path)
    try:
        raw = spec_path.read_bytes()
    except OSError as error:
        raise SpecError(
            [f"{spec_path}: cannot read the run spec ({error.strerror or error})"],
            hint="Check the path; shipped specs are in runspecs/.",
        ) from error
    return parse_spec_text(raw.decode("utf-8", errors="replace"), spec_path, env, raw=raw)


def parse_spec_text(
    text: str,
    path: str | Path = "<spec>",
    env: Mapping[str, str] | None = None,
    *,
    raw: bytes | None = None,
) -> LoadedSpec:
    """Validate spec ``text`` as if read from ``path`` (used by tests and by ``load_spec``)."""
    spec_path = Path(path)
    environment = os.environ if env is None else env
    tree = _parse_yaml(text, spec_path)
    converter = _Converter(spec_path, environment)
    plain = converter.convert(tree, ())
    if converter.problems:
        # Literal secrets are not collected here: an unset ${PROD_JWT} is still in the tree.
        raise SpecError([redact(p, frozenset(converter.secrets)) for p in converter.problems], hint=_ENV_HINT)
    literal = _literal_secrets(plain)
    secrets = frozenset(converter.secrets) | {value for _, value in literal}
    too_short = _short_secret_problems(converter, literal)
    try:
        spec = RunSpec.model_validate(plain)
    except ValidationError as error:
        problems = [converter.locate(item, describe_error(item)) for item in error.errors()]
        duplicates = _duplicate_phase_problems(plain, converter)
        if duplicates:  # the located form replaces the model's whole-spec message
            problems = [p for p in problems if "phase names must be unique" not in p] + duplicates
        hint = _SECRET_HINT if too_short else None
        raise SpecError([redact(p, secrets) for p in problems + too_short], hint=hint) from None
    if too_short:
        raise SpecError(too_short, hint=_SECRET_HINT)
    digest = hashlib.sha256(raw if raw is not None else text.encode()).hexdigest()
    return LoadedSpec(
        spec=spec,
        path=spec_path,
        secrets=secrets,
        sha256=digest,
        env_refs=dict(converter.env_refs),
        secret_paths=tuple(converter.secret_paths) + _literal_secret_paths(plain, converter),
        positions=dict(converter.value_positions),
    )


_ENV_HINT = "Set the variable (for production, in .env.phase5) or give a default: ${VAR:-value}."
_SECRET_HINT = ("Secrets are the bearer tokens (target.auth, metrics.auth), secret and credential headers, URL passwords and every "
                "${VAR} whose name holds TOKEN, JWT, SECRET, PASS or KEY; rename a variable that holds no secret.")


def _short_secret_problems(converter: _Converter, literal: list[tuple[Path_, str]]) -> list[str]:
    """One located problem per place a secret shorter than ``MIN_SECRET_CHARS`` is used (its
    value is never shown): redaction replaces whole values only, and a value that short is
    too likely a word, or part of one, to be hidden in logs and reports."""
    found = dict(converter.short_secrets)  # path -> length and the variables it came from
    for path, value in literal:
        if len(value) < MIN_SECRET_CHARS and path not in found:
            found[path] = f"{len(value)} character(s)"
    in_file_order = sorted(found.items(), key=lambda item: converter.value_positions.get(item[0], (0, 0)))
    return [converter.at(path, f"a secret must be at least {MIN_SECRET_CHARS} characters long (got {what}): "
                               "a shorter one cannot be hidden in logs and reports without garbling other text")
            for path, what in in_file_order]


def _parse_yaml(text: str, spec_path: Path) -> Any:
    try:
        check_shape(YAML(typ="rt").parse(text))  # before the composer: alias bombs, deep nesting
        tree = YAML(typ="rt").load(text)
    except ShapeError as error:
        where = f"{spec_path}:{error.line + 1}:{error.column + 1}"
        raise SpecError([f"{where}: {format_path(error.path) or 'spec'}: {error.message}"]) from None
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{spec_path}:{mark.line + 1}:{mark.column + 1}" if mark else str(spec_path)
        problem = error.problem or error.context or "invalid YAML"
        raise SpecError([f"{where}: YAML syntax error: {problem}"]) from None
    except YAMLError as error:
        raise SpecError([f"{spec_path}: YAML syntax error: {error}"]) from None
    if not isinstance(tree, CommentedMap):
        kind = "empty" if tree is None else ("a list" if isinstance(tree, list) else repr(tree))
        raise SpecError(
            [f"{spec_path}:1:1: spec: must be a mapping of keys such as version, name, target, phases (got {kind})"]
        )
    return tree


class _Converter:
    """Turns the ruamel tree into plain data, interpolating strings and recording positions."""

    def __init__(self, spec_path: Path, env: Mapping[str, str]) -> None:
        self.spec_path = spec_path
        self.env = env
        self.key_positions: dict[Path_, tuple[int, int]] = {}
        self.value_positions: dict[Path_, tuple[int, int]] = {}
        self.problems: list[str] = []
        self.secrets: set[str] = set()
        self.short_secrets: dict[Path_, str] = {}  # path -> "1 character(s) from PROD_JWT"
        self.secret_paths: list[str] = []
        self.env_refs: dict[str, int] = {}

    def convert(self, node: Any, path: Path_) -> Any:
        if isinstance(node, CommentedMap):
            return self._convert_map(node, path)
        if isinstance(node, CommentedSeq):
            return self._convert_seq(node, path)
        if isinstance(node, str):
            return self._interpolate(node, path)
        return node

    def _convert_map(self, node: CommentedMap, path: Path_) -> dict[str, Any]:
        self.value_positions.setdefault(path, (node.lc.line, node.lc.col))
        result: dict[str, Any] = {}
        for key in node:
            child = (*path, str(key))
            try:
                self.key_positions[child] = node.lc.key(key)
                self.value_positions[child] = node.lc.value(key)
            except KeyError:  # merged in by '<<: *anchor': located at the mapping itself
                pass
            result[str(key)] = self.convert(node[key], child)
        return result

    def _convert_seq(self, node: CommentedSeq, path: Path_) -> list[Any]:
        self.value_positions.setdefault(path, (node.lc.line, node.lc.col))
        result = []
        for index, item in enumerate(node):
            child = (*path, index)
            self.value_positions[child] = node.lc.item(index)
            result.append(self.convert(item, child))
        return result

    def _interpolate(self, text: str, path: Path_) -> str:
        line = self.value_positions.get(path, (0, 0))[0] + 1
        try:
            result = interpolate(text, self.env)
        except UnsetVariable as unset:
            self.env_refs.setdefault(unset.name, line)
            self.problems.append(
                self.at(path, f"environment variable {unset.name} is not set")
            )
            return text
        for name in result.references:
            self.env_refs.setdefault(name, line)
        if result.secret_values:
            self.secrets.update(result.secret_values)
            names = ", ".join(n for n in result.references)
            self.secret_paths.append(f"{format_path(path)} (from {names})")
            shortest = min(len(value) for value in result.secret_values)
            if shortest < MIN_SECRET_CHARS:
                secret_names = ", ".join(n for n in result.references if is_secret_name(n))
                self.short_secrets[path] = f"{shortest} character(s) from {secret_names}"
        return result.value

    def at(self, path: Path_, message: str, *, key: bool = False) -> str:
        tables = (self.key_positions, self.value_positions) if key else (self.value_positions,)
        return locate(str(self.spec_path), ChainMap(*tables), path, message)

    def locate(self, error: Mapping[str, Any], message: str) -> str:
        loc = error["loc"]
        on_key = error["type"] == "extra_forbidden" or loc[-1:] == ("[key]",)  # a bad mapping key
        path = tuple(part for part in loc if isinstance(part, (str, int)) and part != "[key]")
        path = _known_prefix(path, self.value_positions)
        return self.at(path, message, key=on_key)


def _duplicate_phase_problems(plain: dict[str, Any], converter: _Converter) -> list[str]:
    """Repeated phase names, located at the repeat, even when other errors stop the model check."""
    phases = plain.get("phases")
    if not isinstance(phases, list):
        return []
    seen: set[str] = set()
    problems = []
    for index, phase in enumerate(phases):
        name = phase.get("name") if isinstance(phase, dict) else None
        if not isinstance(name, str):
            continue
        if name in seen:
            message = f"phase names must be unique ({name!r} is used before)"
            problems.append(converter.at(("phases", index, "name"), message))
        seen.add(name)
    return problems


def locate(spec_path: str, positions: Mapping[Path_, tuple[int, int]], path: Path_, message: str) -> str:
    """``file:line:col: key.path: message`` at ``path``, or at its nearest located parent."""
    line, col = next((positions[path[:end]] for end in range(len(path), -1, -1)
                      if path[:end] in positions), (0, 0))
    return f"{spec_path}:{line + 1}:{col + 1}: {format_path(path) or 'spec'}: {message}"


def _known_prefix(path: Path_, positions: Mapping[Path_, Any]) -> Path_:
    """Drop pydantic's internal loc parts (e.g. union tags) that are not keys of the file."""
    kept: list[str | int] = []
    for part in path:
        candidate = (*kept, part)
        if candidate in positions or not kept or (*kept,) in positions:
            kept.append(part)
    return tuple(kept)


def format_path(path: Path_) -> str:
    """``("phases", 1, "rate")`` -> ``phases[1].rate``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _literal_secrets(plain: Any) -> list[tuple[Path_, str]]:
    """(where, value) of every secret value of the spec: the bearer token, secret and
    credential headers, URL passwords (interpolated ones included: by now they are values)."""
    found: list[tuple[Path_, str]] = []
    if not isinstance(plain, dict) or not isinstance(plain.get("target"), dict):
        return found
    target = plain["target"]
    for section, key in _TOKEN_KEYS:
        block = plain.get(section)
        auth = block.get("auth") if isinstance(block, dict) else None
        if isinstance(auth, dict) and isinstance(auth.get(key), str) and auth[key]:
            found.append(((section, "auth", key), auth[key]))
    for index, request in enumerate(target.get("requests") or []):
        if not isinstance(request, dict):
            continue
        headers = request.get("headers") if isinstance(request.get("headers"), dict) else {}
        for name in _secret_header_names(request):
            value = headers.get(name)
            if isinstance(value, str) and value:
                path = ("target", "requests", index, "headers", name)
                found.append((path, value))
                scheme, _, credential = value.partition(" ")  # "Bearer <token>": the token alone too
                if credential and scheme.isalpha():
                    found.append((path, credential))
    found += _url_passwords(plain)
    return found


# Tokens of the spec: the load JWT (the target's) and the metrics page's own token.
_TOKEN_KEYS: tuple[tuple[str, str], ...] = (
    ("target", "bearer"), ("metrics", "bearer"), ("metrics", "x_metrics_token"))

# Headers that carry credentials whatever secret_headers says (a forgotten entry must not
# put a token in metadata.json or the site).
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})


def _secret_header_names(request: dict[str, Any]) -> list[str]:
    """Headers of ``request`` whose values are secrets: those listed in ``secret_headers``
    and every credential header (Authorization, Cookie, X-Api-Key ...)."""
    headers = request.get("headers") if isinstance(request.get("headers"), dict) else {}
    listed = [name for name in request.get("secret_headers") or [] if isinstance(name, str)]
    implied = [name for name in headers if str(name).lower() in _CREDENTIAL_HEADERS and name not in listed]
    return listed + implied


_URL_KEYS = (("target", "base_url"), ("metrics", "url"), ("metrics", "scrape_url"))


def _url_passwords(plain: dict[str, Any]) -> list[tuple[Path_, str]]:
    """(key, password) of every URL written with credentials (``http://user:pw@host``):
    httpx sends them as basic auth, so the password is as secret as a bearer token."""
    found = []
    for section, key in _URL_KEYS:
        block = plain.get(section)
        url = block.get(key) if isinstance(block, dict) else None
        if not isinstance(url, str):
            continue
        try:
            password = urlsplit(url).password
        except ValueError:  # a malformed URL is reported by the model check
            continue
        if password:
            found.append(((section, key), password))
    return found


def _literal_secret_paths(plain: dict[str, Any], converter: _Converter) -> tuple[str, ...]:
    paths = []
    already = {entry.split(" ")[0] for entry in converter.secret_paths}
    for section, key in _TOKEN_KEYS:
        block = plain.get(section)
        auth = (block.get("auth") if isinstance(block, dict) else None) or {}
        path = f"{section}.auth.{key}"
        if isinstance(auth, dict) and auth.get(key) and path not in already:
            paths.append(path)
    for index, request in enumerate(plain.get("target", {}).get("requests") or []):
        for name in _secret_header_names(request):
            path = f"target.requests[{index}].headers.{name}"
            if path not in already:
                paths.append(path)
    urls = [format_path(key) for key, _ in _url_passwords(plain)]
    paths += [f"{key} (password)" for key in urls if key not in already]
    return tuple(paths)
