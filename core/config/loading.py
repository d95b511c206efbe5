"""Finding, reading and validating the configuration file; pydantic's errors as one-line ``ConfigError``s."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from erpsync.core.config.errors import ConfigError, Wording, show
from erpsync.core.config.models import ERP_TYPES, Settings
from erpsync.core.config.secrets import Secret

ENV_CONFIG = "ERPSYNC_CONFIG"
DEFAULT_CONFIG_FILE = "erpsync.toml"


def _resolve(explicit: str | Path | None) -> tuple[Path, str]:
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser(), "file not found"
    from_env = os.environ.get(ENV_CONFIG, "")
    if from_env:
        return Path(from_env).expanduser(), f"file not found (named by {ENV_CONFIG})"
    return Path(DEFAULT_CONFIG_FILE), f"file not found (pass --config or set {ENV_CONFIG})"


def resolve_config_path(explicit: str | Path | None) -> Path:
    """The configuration file to use: ``explicit`` (--config), else $ERPSYNC_CONFIG, else ./erpsync.toml."""
    return _resolve(explicit)[0]


def load_config(path: str | Path | None = None) -> Settings:
    """Read, parse and validate the configuration file; every problem is a one-line ConfigError."""
    file, not_found = _resolve(path)
    source = str(file)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{source}: {not_found}") from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not valid UTF-8 (byte {exc.start})") from None
    data = _parse_toml(text, source)
    return _build(data, source, file)


_TOML_POSITION = re.compile(r"^(?P<message>.*?) \(at (?:line (?P<line>\d+), column (?P<column>\d+)|end of document)\)$")


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.match(message)
        if match is None:
            raise ConfigError(f"{source}: TOML syntax error: {message}") from None
        if match.group("line"):
            line, column = int(match.group("line")), int(match.group("column"))
        else:
            line = text.count("\n") + 1
            column = len(text) - (text.rfind("\n") + 1) + 1
        raise ConfigError(f"{source}:{line}:{column}: TOML syntax error: {match.group('message')}") from None


def settings_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> Settings:
    """Validate already-parsed configuration data (tests, the demo); errors name ``source``."""
    return _build(data, source, None)


def _build(data: Mapping[str, Any], source: str, path: Path | None) -> Settings:
    try:
        settings = Settings.model_validate(dict(data))
    except ValidationError as exc:
        # The first error only, and never the input values pydantic would print (a literal secret may be one).
        key, problem = _describe_error(exc.errors()[0])
        raise ConfigError(f"{source}: {key}: {problem}" if key else f"{source}: {problem}") from None
    settings._path = path
    settings._source = source
    _label_secrets(settings, "", source)
    return settings


def _label_secrets(value: object, key: str, source: str) -> None:
    """Tell every Secret where it was configured, so a late resolution failure can say so."""
    if isinstance(value, Secret):
        value._origin = f"{source}: {key}"
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _label_secrets(getattr(value, name), f"{key}.{name}" if key else name, source)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _label_secrets(item, f"{key}[{index}]", source)


# --------------------------------------------------------------------------------------------- error wording

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _format_key(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _BARE_KEY.match(part) else '"' + part.replace('"', '\\"') + '"'
            out += f".{name}" if out else name
    return out


def _is_model(node: Any) -> bool:
    return isinstance(node, type) and issubclass(node, BaseModel)


def _tag(model: type[BaseModel]) -> object:
    """The value of a model's ``type`` field in a discriminated union (its one Literal value), or None."""
    field = model.model_fields.get("type")
    values = get_args(field.annotation) if field is not None else ()
    return values[0] if len(values) == 1 else None


def _optional_model(node: Any) -> Any:
    """The model of an optional table (``AlertSettings | None``: [alerts]); any other type unchanged."""
    args = get_args(node)
    if get_origin(node) in (Union, UnionType) and len(args) == 2 and type(None) in args:
        inner = args[0] if args[1] is type(None) else args[1]
        return inner if _is_model(inner) else node
    return node


def _locate(loc: Sequence[str | int]) -> tuple[FieldInfo | None, FieldInfo | None]:
    """The settings field an error location is in, and the declared type at exactly that location.

    ``stores[0].products.erp_owns[1]`` is in the field ``erp_owns``, and its type is the list's item type; a
    location the walk cannot follow (an unknown key) gives None for the type.
    """
    field: FieldInfo | None = None
    here: FieldInfo | None = None
    node: Any = Settings
    for part in loc:
        node = _optional_model(node)
        if _is_model(node):
            here = node.model_fields.get(part) if isinstance(part, str) else None
            if here is None:
                return field, None
            field, node = here, here.annotation
            continue
        origin, args = get_origin(node), get_args(node)
        if origin in (Union, UnionType) and len(args) == 2 and type(None) in args:  # an optional value: its type
            here = FieldInfo.from_annotation(args[0] if args[1] is type(None) else args[1])
            node = here.annotation
            origin, args = get_origin(node), get_args(node)
        if origin in (Union, UnionType):  # a discriminated union: the location names the tag
            tagged = [a for a in args if _is_model(a) and _tag(a) == part]
            if not tagged:
                return field, None
            node = tagged[0]
            continue
        if origin is list and isinstance(part, int):
            item = args[0]
        elif origin is dict and isinstance(part, str):
            item = args[1]
        else:
            return field, None
        here = FieldInfo.from_annotation(item)
        node = here.annotation
    return field, here


def _wording(info: FieldInfo | None) -> Wording:
    found = [m for m in info.metadata if isinstance(m, Wording)] if info is not None else []
    return found[0] if found else Wording()


def _describe_range(gt: float | None = None, ge: float | None = None, le: float | None = None) -> str:
    if ge is not None and le is not None:
        return f" between {ge:g} and {le:g}"
    parts = []
    if gt is not None:
        parts.append(f"greater than {gt:g}")
    if ge is not None:
        parts.append(f"at least {ge:g}")
    if le is not None:
        parts.append(f"at most {le:g}")
    return (" " + " and ".join(parts)) if parts else ""


def _requirement(info: FieldInfo | None) -> str:
    """What a value must be ("must be ..."): the field's ``Wording``, or a number's type and bounds."""
    if info is None:
        return ""
    wording = _wording(info)
    if wording.requirement:
        return wording.requirement
    if info.annotation in (int, float, Decimal):
        bounds = {name: getattr(m, name) for m in info.metadata for name in ("gt", "ge", "le") if hasattr(m, name)}
        noun = "an integer" if info.annotation is int else "a number"
        return f"must be {noun}{_describe_range(**bounds)}"
    return ""


def _describe_error(error: ErrorDetails) -> tuple[str, str]:
    """(key, problem) for one pydantic error, in our wording."""
    loc: list[str | int] = list(error["loc"])
    field, here = _locate(loc)
    if len(loc) >= 2 and loc[0] == "erp" and loc[1] in ERP_TYPES:
        del loc[1]  # the discriminated union's tag is not a key of the file
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    got = error.get("input")
    noun = _wording(field).noun
    requirement = _requirement(here)
    if kind == "erpsync":
        loc.extend(ctx.get("subloc", ()))
        problem = str(ctx["problem"])
    elif kind == "union_tag_invalid":
        loc.append("type")
        problem = f"must be one of {ctx['expected_tags']} (got {show(ctx['tag'])})"
    elif kind == "union_tag_not_found":
        loc.append("type")
        problem = "required key is missing"
    elif kind == "missing":
        problem = "required key is missing"
    elif kind == "extra_forbidden":
        problem = "unknown key"
    elif kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace(" or ", ", ")
        if noun and here is not field:  # an item of an array of choices
            problem = f"unknown {noun} {show(got)} (known: {expected})"
        else:
            problem = f"must be one of {expected} (got {show(got)})"
    elif kind == "too_short" and noun:
        count = ctx["min_length"]
        problem = f"must list at least {count} {noun}{'s' if count > 1 else ''}"
    elif requirement:  # any other error on a value that says what it must be: a type, a bound, a pattern
        problem = f"{requirement} (got {show(got)})"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        problem = f"must be a table (got {show(got)})"
    elif kind == "list_type":
        problem = f"must be an array (got {show(got)})"
        if loc == ["stores"]:
            problem = f"must be an array of tables, written [[stores]] (got {show(got)})"
    elif kind in ("bool_type", "bool_parsing"):
        problem = f"must be true or false (got {show(got)})"
    elif kind == "string_type":
        problem = f"must be a string (got {show(got)})"
    else:  # not expected with the field types; pydantic's own wording, without the input
        problem = error["msg"][:1].lower() + error["msg"][1:]
    return _format_key(loc), problem
