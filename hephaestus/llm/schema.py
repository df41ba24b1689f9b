"""Answer models: one dataclass per kind of answer gives the JSON schema and the check.

The schema sent as ``response_format`` and the check applied to what comes back are both
derived from the same annotated dataclass, so they cannot drift apart. The annotations
understood are ``str``, ``int``, ``bool``, ``Literal[...]`` of strings, ``list[...]``,
``X | None``, nested dataclasses, and a union of dataclasses told apart by a shared
``Literal`` field (the discriminator).

The schema keeps to the subset of JSON Schema that OpenAI's strict structured outputs,
llama.cpp's grammar converter, vLLM and Ollama all accept: ``type``, ``properties``,
``required`` (every property, as strict mode demands), ``additionalProperties: false``,
``enum``, ``anyOf``, ``items`` and ``description``. The check is exact about types and
lenient only where the agent reads nothing: unknown keys are ignored, and a nullable field
that has a default may be left out.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, get_args, get_origin, get_type_hints

T = TypeVar("T")

_NONE = type(None)
_SCALARS: dict[type, tuple[str, str]] = {
    str: ("string", "a string"),
    int: ("integer", "an integer"),
    bool: ("boolean", "true or false"),
}


class AnswerError(ValueError):
    """An answer does not fit its model; ``path`` names the field (``""`` is the answer)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"field {path} {problem}" if path else f"the answer {problem}")
        self.path = path
        self.problem = problem


def describe(text: str) -> Any:
    """Field metadata carrying the ``description`` that the schema shows the model."""
    return field(metadata={"description": text})


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


@dataclass(frozen=True)
class AnswerSchema(Generic[T]):
    """The schema of one kind of answer; ``choices`` limits top-level string fields."""

    name: str
    model: type[T]
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of the answer (a fresh dict each call)."""
        return _object_schema(self.model, self.choices)

    def validate(self, data: Any) -> T:
        """``data`` (decoded JSON) as an instance of the model, or :class:`AnswerError`."""
        return typing.cast(T, _check_object(self.model, data, "", self.choices))

    def with_choices(self, **choices: tuple[str, ...]) -> AnswerSchema[T]:
        """A copy whose named string fields must take one of the given values."""
        return AnswerSchema(self.name, self.model, {**self.choices, **choices})


# -- schema -----------------------------------------------------------------------------------
def _schema(kind: Any) -> dict[str, Any]:
    origin, args = get_origin(kind), get_args(kind)
    if kind in _SCALARS:
        return {"type": _SCALARS[kind][0]}
    if origin is Literal:
        return {"type": "string", "enum": list(args)}
    if origin is list:
        return {"type": "array", "items": _schema(args[0])}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [{"type": "null"} if a is _NONE else _schema(a) for a in args]}
    if dataclasses.is_dataclass(kind):
        return _object_schema(typing.cast(type, kind), {})
    raise TypeError(f"answer models cannot use {kind!r}")  # pragma: no cover - a coding error


def _object_schema(model: type, choices: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    hints = get_type_hints(model, include_extras=False)
    properties: dict[str, Any] = {}
    for item in dataclasses.fields(model):
        schema = _schema(hints[item.name])
        if item.name in choices:
            schema = {"type": "string", "enum": list(choices[item.name])}
        if "description" in item.metadata:
            schema["description"] = item.metadata["description"]
        properties[item.name] = schema
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


# -- check ------------------------------------------------------------------------------------
def _check(kind: Any, value: Any, path: str) -> Any:
    origin, args = get_origin(kind), get_args(kind)
    if kind in _SCALARS:
        return _check_scalar(kind, value, path)
    if origin is Literal:
        if value not in args:
            raise AnswerError(path, f"must be one of {', '.join(args)}, got {_show(value)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise AnswerError(path, f"must be an array, got {json_type(value)}")
        return [_check(args[0], item, f"{path}[{i}]") for i, item in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        return _check_union(args, value, path)
    return _check_object(kind, value, path, {})


def _check_scalar(kind: type, value: Any, path: str) -> Any:
    # bool is an int in Python, never in JSON
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise AnswerError(path, f"must be {_SCALARS[kind][1]}, got {json_type(value)}")


def _check_union(args: tuple[Any, ...], value: Any, path: str) -> Any:
    if value is None and _NONE in args:
        return None
    options = [a for a in args if a is not _NONE]
    if len(options) == 1:
        return _check(options[0], value, path)
    return _check_object(_variant(options, value, path), value, path, {})


def _variant(options: list[type], value: Any, path: str) -> type:
    """The dataclass among ``options`` whose ``Literal`` discriminator ``value`` carries."""
    if not isinstance(value, dict):
        raise AnswerError(path, f"must be an object, got {json_type(value)}")
    key = _discriminator(options)
    for option in options:
        if value.get(key) in get_args(get_type_hints(option)[key]):
            return option
    allowed = ", ".join(a for option in options for a in get_args(get_type_hints(option)[key]))
    where = f"{path}.{key}" if path else key
    if key not in value:
        raise AnswerError(where, "is missing")
    raise AnswerError(where, f"must be one of {allowed}, got {_show(value[key])}")


def _discriminator(options: list[type]) -> str:
    first = get_type_hints(options[0])
    for name, kind in first.items():
        if get_origin(kind) is Literal and all(
            get_origin(get_type_hints(o).get(name)) is Literal for o in options
        ):
            return name
    raise TypeError(f"no Literal field tells {options} apart")  # pragma: no cover - coding error


def _check_object(
    model: type, value: Any, path: str, choices: Mapping[str, tuple[str, ...]]
) -> Any:
    if not isinstance(value, dict):
        raise AnswerError(path, f"must be an object, got {json_type(value)}")
    hints = get_type_hints(model)
    values: dict[str, Any] = {}
    for item in dataclasses.fields(model):
        where = f"{path}.{item.name}" if path else item.name
        if item.name not in value:
            if item.default is dataclasses.MISSING:
                raise AnswerError(where, "is missing")
            continue
        checked = _check(hints[item.name], value[item.name], where)
        allowed = choices.get(item.name)
        if allowed is not None and checked not in allowed:
            raise AnswerError(where, f"must be one of {', '.join(allowed)}, got {_show(checked)}")
        values[item.name] = checked
    return model(**values)


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else json_type(value)
    return text if len(text) <= 60 else text[:57] + "..."
