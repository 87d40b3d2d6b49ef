"""Tools described by JSON Schema: MCP servers, OpenAI function lists and BFCL.

`build_json_tool(description, fn)` (public as `tools.schema.tool_from_json_schema`) takes

* MCP:    `{"name", "description", "inputSchema"}` (Anthropic's `input_schema` too);
* OpenAI: `{"type": "function", "function": {"name", "description", "parameters"}}` or the
          bare `{"name", "description", "parameters"}`;
* BFCL:   the bare form with BFCL's type names (`dict`, `float`, `tuple`, `any`, ...),
          mapped to JSON Schema as BFCL's own OpenAI handler maps them (`any`: no type).

and returns a `Tool` whose arguments are checked by the `jsonschema` package (the
reference validator: what the model is shown is exactly what is checked; `$ref`/`$defs`,
`anyOf`, enums, ranges, patterns and formats all work) as strictly as `@tool`:

* `integer` means a JSON integer: `3.0` is refused as `@tool` refuses it (the spec would
  accept it), booleans are never numbers, and nothing is coerced (`"12"` is a string);
* unknown arguments are refused: an object schema with `properties` that states no
  `additionalProperties` gets `false` (the root always; turn off with `forbid_extra=False`),
  except inside `allOf`, where it would break the composition;
* a missing optional argument gets its schema `default`, so the body sees what a
  `@tool` body would.

A description is checked at definition (ValueError naming the tool): the name against
OpenAI's pattern, the schema against its metaschema, and every `$ref` must resolve inside
the schema (remote references are refused: nothing is fetched). The body is called as
`fn(ctx, **arguments)` with its own copy of the arguments.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema
from jsonschema import validators
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import specification_with

from core.records import ErrorKind, Termination
from tools.schema import (
    CallError,
    Tool,
    check_tool_name,
    function_schema,
    invalid_message,
    join_errors,
    mismatch_message,
    missing_message,
    parameter_path,
    unchecked_error,
    unexpected_message,
)

# BFCL's type names (bfcl/constants/type_mappings.py, GORILLA_TO_OPENAPI); "any" and "Any"
# map to no type constraint at all rather than BFCL's "string", since any value is valid.
BFCL_TYPES = {
    "float": "number",
    "double": "number",
    "bool": "boolean",
    "list": "array",
    "tuple": "array",
    "dict": "object",
    "byte": "integer",
    "short": "integer",
    "long": "integer",
    "Bigint": "integer",
    "char": "string",
    "String": "string",
    "ArrayList": "array",
    "Array": "array",
    "Queue": "array",
    "Stack": "array",
    "HashMap": "object",
    "Hashtable": "object",
    "any": None,
    "Any": None,
}
SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
SUBSCHEMA_LISTS = ("anyOf", "oneOf", "prefixItems")
SUBSCHEMA_SINGLE = ("additionalProperties", "items", "not", "contains", "if", "then", "else")


def build_json_tool(
    description: Any,
    fn: Callable[..., Any] | None,
    *,
    name: str | None,
    version: str,
    ends_episode: Termination | None,
    timeout_s: float | None,
    forbid_extra: bool,
) -> Tool:
    function = _function_part(description)
    tool_name = name if name is not None else function.get("name")
    label = f"JSON tool {tool_name!r}"
    check_tool_name(tool_name)
    summary = function.get("description") or ""
    if not isinstance(summary, str):
        raise ValueError(f"{label}: 'description' must be a string, got {type(summary).__name__}")
    raw = _parameters_of(function, label)
    parameters = _normalised(copy.deepcopy(raw), forbid_extra=forbid_extra, root=True)
    if parameters.get("type", "object") != "object":
        raise ValueError(
            f"{label}: parameters must be an object schema, got type {parameters['type']!r}"
        )
    parameters.setdefault("type", "object")
    checker = JsonSchemaArguments.compile(parameters, label)
    schema = function_schema(tool_name, summary, parameters)
    body = fn if fn is not None else _unimplemented(tool_name)
    return Tool(tool_name, summary, body, checker, schema, version, ends_episode, timeout_s)


def _function_part(description: Any) -> dict[str, Any]:
    if not isinstance(description, dict):
        raise ValueError(
            f"a tool description must be a JSON object, got {type(description).__name__}"
        )
    if description.get("type") == "function" and isinstance(description.get("function"), dict):
        return description["function"]
    return description


def _parameters_of(function: dict[str, Any], label: str) -> dict[str, Any]:
    for key in ("parameters", "inputSchema", "input_schema"):
        if key in function:
            parameters = function[key]
            if not isinstance(parameters, dict):
                raise ValueError(f"{label}: '{key}' must be a JSON object (a JSON Schema)")
            return parameters
    return {"type": "object", "properties": {}}


def _normalised(schema: Any, *, forbid_extra: bool, root: bool = False) -> Any:
    """BFCL type names mapped, `additionalProperties: false` added (in place, on a copy)."""
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if isinstance(kind, str) and kind in BFCL_TYPES:
        if BFCL_TYPES[kind] is None:
            del schema["type"]
        else:
            schema["type"] = BFCL_TYPES[kind]
    elif isinstance(kind, list):
        schema["type"] = [BFCL_TYPES.get(k, k) if isinstance(k, str) else k for k in kind]
    stated = any(key in schema for key in ("additionalProperties", "unevaluatedProperties"))
    if forbid_extra and not stated and (root or "properties" in schema):
        schema["additionalProperties"] = False
    for key in SUBSCHEMA_MAPS:
        if isinstance(schema.get(key), dict):
            for sub in schema[key].values():
                _normalised(sub, forbid_extra=forbid_extra)
    for key in SUBSCHEMA_LISTS:
        if isinstance(schema.get(key), list):
            for sub in schema[key]:
                _normalised(sub, forbid_extra=forbid_extra)
    for key in SUBSCHEMA_SINGLE:
        if key in schema:
            _normalised(schema[key], forbid_extra=forbid_extra)
    for sub in schema.get("allOf", []) if isinstance(schema.get("allOf"), list) else []:
        _normalised(sub, forbid_extra=False)  # allOf branches must stay open to compose
    return schema


def _unimplemented(tool_name: str) -> Callable[..., Any]:
    def no_body(ctx: Any, **arguments: Any) -> Any:
        raise NotImplementedError(
            f"tool '{tool_name}' has no implementation (give it one with Tool.with_handler)"
        )

    return no_body


def _strict_integer(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


@dataclass(frozen=True, slots=True)
class JsonSchemaArguments:
    """Arguments checked against a JSON Schema by `jsonschema`."""

    validator: Validator
    parameter_names: tuple[str, ...]
    defaults: tuple[tuple[str, Any], ...]  # optional top-level arguments with a default

    @classmethod
    def compile(cls, parameters: dict[str, Any], label: str) -> JsonSchemaArguments:
        base = validators.validator_for(parameters, default=jsonschema.Draft202012Validator)
        try:
            base.check_schema(parameters)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(part) for part in exc.absolute_path) or "(root)"
            raise ValueError(f"{label}: invalid JSON Schema at {where}: {exc.message}") from None
        _check_refs(parameters, base, label)
        strict = validators.extend(
            base, type_checker=base.TYPE_CHECKER.redefine("integer", _strict_integer)
        )
        validator = strict(
            parameters, registry=Registry(), format_checker=base.FORMAT_CHECKER
        )  # an empty registry: a $ref is never fetched from the network
        properties = parameters.get("properties", {})
        required = set(parameters.get("required", []))
        defaults = tuple(
            (prop, spec["default"])
            for prop, spec in properties.items()
            if isinstance(spec, dict) and "default" in spec and prop not in required
        )
        return cls(validator, tuple(properties), defaults)

    def check(self, tool_name: str, arguments: dict[str, Any]) -> dict[str, Any] | CallError:
        try:
            found = list(self.validator.iter_errors(arguments))
            # a value of the wrong type also fails its enum/const (3 is not one of ['c', 'f']):
            # the type mismatch alone says it
            mistyped = {tuple(e.absolute_path) for e in found if e.validator == "type"}
            errors = [
                item
                for error in found
                if error.validator == "type" or tuple(error.absolute_path) not in mistyped
                for item in self._describe(tool_name, error)
            ]
            if errors:
                return join_errors(errors)
            checked = copy.deepcopy(arguments)  # the body may change its copy freely
        except Exception as exc:  # hostile values (huge ints in messages, cycles): refused
            return unchecked_error(tool_name, exc)
        for prop, default in self.defaults:
            if prop not in checked:
                checked[prop] = copy.deepcopy(default)
        return checked

    def _describe(
        self, tool_name: str, error: jsonschema.ValidationError
    ) -> Iterator[tuple[ErrorKind, str]]:
        path = list(error.absolute_path)
        keyword, instance, where = error.validator, error.instance, parameter_path(path)
        if keyword == "required" and isinstance(instance, dict):
            for prop in error.validator_value:
                if prop not in instance:
                    message = missing_message(tool_name, parameter_path([*path, prop]))
                    yield ErrorKind.MISSING_ARGUMENT, message
        elif keyword in ("additionalProperties", "unevaluatedProperties") and isinstance(
            instance, dict
        ):
            known = list(error.schema.get("properties", {}))
            patterns = list(error.schema.get("patternProperties", {}))
            for prop in instance:
                if prop not in known and not any(re.search(p, prop) for p in patterns):
                    message = unexpected_message(tool_name, parameter_path([*path, prop]), known)
                    yield ErrorKind.UNEXPECTED_ARGUMENT, message
        elif keyword == "type":
            expected = _type_names(error.validator_value)
            yield ErrorKind.TYPE_MISMATCH, mismatch_message(where, expected, instance)
        elif (
            keyword in ("anyOf", "oneOf")
            and error.context
            and all(sub.validator == "type" and not sub.relative_path for sub in error.context)
        ):  # Optional[int] and friends: a type mismatch against every branch
            expected = " or ".join(_type_names(sub.validator_value) for sub in error.context)
            yield ErrorKind.TYPE_MISMATCH, mismatch_message(where, expected, instance)
        else:
            yield ErrorKind.INVALID_VALUE, invalid_message(where, error.message)


def _type_names(value: Any) -> str:
    return " or ".join(value) if isinstance(value, list) else str(value)


def _check_refs(parameters: dict[str, Any], base: type[Validator], label: str) -> None:
    """Every `$ref` must resolve inside the schema itself (refs resolved against its root)."""
    spec = specification_with(base.META_SCHEMA["$schema"])
    resolver = Registry().with_resource("", spec.create_resource(parameters)).resolver()
    for ref in _refs(parameters):
        try:
            resolver.lookup(ref)
        except Unresolvable:
            raise ValueError(
                f"{label}: $ref {ref!r} does not resolve inside the schema "
                "(only local references like '#/$defs/Name' are allowed; nothing is fetched)"
            ) from None


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)
