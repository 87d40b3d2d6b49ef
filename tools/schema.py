"""Typed tools: a Python function whose arguments are a pydantic model, or a JSON Schema.

`@tool` turns `def check_refund(ctx, customer_id: int, order_id: int) -> dict` into a
`Tool`: the first parameter receives the episode's sandbox, the rest become a strict
pydantic argument model, exported as an OpenAI-style JSON function schema (descriptions
come from the Google-style docstring; nested models and enums stay in its `$defs`, so the
schema is self-contained). `tool_from_json_schema(description, fn)` builds the same kind
of `Tool` from an MCP, OpenAI or BFCL function description (`tools.json_schema`).

`Tool.validate(arguments)` never raises: it returns the validated keyword arguments or a
`CallError` whose message names the parameter, for example ``ERROR: Type mismatch in
parameter 'customer_id': expected integer, got string 'Alice Smith'``. Arguments are
checked as the JSON they were sent as: no coercion (`"12"` is not an integer, `12.0` is
not one either), but a date, enum, tuple, Decimal or UUID parameter takes its JSON
encoding (`"2026-02-01"`, the enum's value, an array, a number or string, a UUID string),
exactly as the exported schema advertises.

A tool's name must match OpenAI's pattern `^[a-zA-Z0-9_-]{1,64}$` (ValueError at
definition). A tool declares `timeout_s` (default `DEFAULT_TIMEOUT_S`; None runs it inline,
for bodies bounded by construction): the `Toolbox` enforces it. `Tool.schema` is a fresh
copy on every access, so no caller can change a tool that other envs share.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import PydanticSerializationError, SchemaValidator, to_json

from core.records import ErrorKind, Termination

TOOL_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
DEFAULT_TIMEOUT_S = 2.0
ARGS_HEADERS = ("Args:", "Arguments:", "Parameters:")  # docstring sections read
SECTION_HEADERS = (*ARGS_HEADERS, "Returns:", "Raises:", "Examples:")
JSON_TYPE_NAMES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
    list: "array",
    dict: "object",
}
EXPECTED_BY_ERROR = {
    "int_type": "integer",
    "int_from_float": "integer",
    "int_parsing": "integer",
    "float_type": "number",
    "float_parsing": "number",
    "string_type": "string",
    "bool_type": "boolean",
    "bool_parsing": "boolean",
    "list_type": "array",
    "dict_type": "object",
    "model_type": "object",
    "none_required": "null",
}


@dataclass(frozen=True, slots=True)
class CallError:
    """A call the agent got wrong: the kind for logs, the message for the agent."""

    kind: ErrorKind
    message: str


class ArgumentChecker(Protocol):
    """Validates one call's arguments for a tool (pydantic model or JSON Schema)."""

    parameter_names: tuple[str, ...]

    def check(self, tool_name: str, arguments: dict[str, Any]) -> dict[str, Any] | CallError: ...


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    fn: Callable[..., Any]
    checker: ArgumentChecker
    schema_text: str  # the OpenAI function schema as canonical JSON (shared, immutable)
    version: str = "1.0"
    ends_episode: Termination | None = None
    timeout_s: float | None = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        check_tool_name(self.name)
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ValueError(
                f"tool '{self.name}': timeout_s must be > 0 or None, got {self.timeout_s!r}"
            )

    @property
    def schema(self) -> dict[str, Any]:
        """The OpenAI-style function schema (a fresh copy: change it freely)."""
        return json.loads(self.schema_text)

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any] | CallError:
        return self.checker.check(self.name, arguments)

    def with_handler(self, fn: Callable[..., Any]) -> Tool:
        """The same tool with another body `fn(ctx, **arguments)`."""
        return dataclasses.replace(self, fn=fn)

    def __call__(self, ctx: Any, **kwargs: Any) -> Any:
        return self.fn(ctx, **kwargs)


def check_tool_name(name: Any) -> str:
    if not isinstance(name, str) or not TOOL_NAME_PATTERN.match(name):
        raise ValueError(
            f"tool name {name!r} does not match {TOOL_NAME_PATTERN.pattern} "
            "(OpenAI's function-name pattern); pass name=... to rename it"
        )
    return name


def function_schema(name: str, description: str, parameters: dict[str, Any]) -> str:
    """The OpenAI / HF chat-template function schema, as canonical JSON text."""
    schema = {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }
    return json.dumps(schema)


# ---- @tool: typed Python functions ---------------------------------------------------
@dataclass(frozen=True, slots=True)
class PydanticArguments:
    """Arguments checked by a strict pydantic model; a call that fails is looked at again
    as the JSON it was sent as, so dates, enums, tuples, decimals and UUIDs take their JSON
    encoding while `"12"` stays a string (strict JSON mode never coerces). Arguments that
    cannot be written as JSON (an arbitrary object) keep the Python verdict.

    Fields are named `p<index>`, each with its parameter's name as alias: a parameter name
    pydantic cannot use as a field (`_x` would become a private attribute and vanish,
    `schema` or `model_x` would shadow the model's own) works like any other."""

    fields: tuple[tuple[str, str], ...]  # (field name, parameter name)
    parameter_names: tuple[str, ...]
    validator: SchemaValidator  # the model's own, looked up once

    def check(self, tool_name: str, arguments: dict[str, Any]) -> dict[str, Any] | CallError:
        try:
            try:
                model = self.validator.validate_python(arguments, strict=True)  # common case
            except ValidationError as python_error:
                model = self._as_json(arguments, python_error)
        except ValidationError as exc:
            return describe_validation_error(tool_name, self.parameter_names, exc)
        except Exception as exc:  # hostile input (recursion, ...): still the agent's call
            return unchecked_error(tool_name, exc)
        return dict(zip(self.parameter_names, model.__dict__.values(), strict=True))

    def _as_json(self, arguments: dict[str, Any], python_error: ValidationError) -> BaseModel:
        try:
            encoded = to_json(arguments)  # NaN and infinities as constants (the default)
        except (PydanticSerializationError, ValueError):
            raise python_error from None  # not JSON data: Python's verdict stands
        return self.validator.validate_json(encoded, strict=True)


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    version: str = "1.0",
    ends_episode: Termination | None = None,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
) -> Any:
    """Decorator: build a `Tool` from a typed function `fn(ctx, **arguments)`."""

    def build(func: Callable[..., Any]) -> Tool:
        tool_name = check_tool_name(name if name is not None else func.__name__)
        summary, arg_docs = parse_docstring(inspect.getdoc(func) or "")
        fields: dict[str, Any] = {}
        names: list[tuple[str, str]] = []
        parameters = list(inspect.signature(func).parameters.values())[1:]  # skip ctx
        hints = inspect.get_annotations(func, eval_str=True)
        for index, param in enumerate(parameters):
            if param.name not in hints:
                raise TypeError(f"tool '{tool_name}': parameter '{param.name}' needs a type hint")
            default = ... if param.default is inspect.Parameter.empty else param.default
            field_name = f"p{index}"
            fields[field_name] = (hints[param.name], Field(default, alias=param.name))
            names.append((field_name, param.name))
        model = create_model(  # type: ignore[call-overload]
            f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
        )
        parameter_names = tuple(p for _, p in names)
        checker = PydanticArguments(tuple(names), parameter_names, model.__pydantic_validator__)
        schema = function_schema(tool_name, summary, model_parameters(model, arg_docs))
        return Tool(tool_name, summary, func, checker, schema, version, ends_episode, timeout_s)

    return build(fn) if fn is not None else build


def tool_from_json_schema(
    description: dict[str, Any],
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    version: str = "1.0",
    ends_episode: Termination | None = None,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    forbid_extra: bool = True,
) -> Tool:
    """A `Tool` from an MCP (`inputSchema`), OpenAI (`{"type": "function", ...}` or bare
    `{name, description, parameters}`) or BFCL function description; see `tools.json_schema`.

    `fn(ctx, **arguments)` is the body; without one the tool answers every call with an
    error saying it has no implementation (give it one later with `Tool.with_handler`)."""
    from tools.json_schema import build_json_tool  # jsonschema loads only for such tools

    return build_json_tool(
        description,
        fn,
        name=name,
        version=version,
        ends_episode=ends_episode,
        timeout_s=timeout_s,
        forbid_extra=forbid_extra,
    )


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its summary and `Args:` descriptions."""
    summary_lines: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None  # the header of the section we are in (None: the summary)
    current: str | None = None  # the argument being described
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped in SECTION_HEADERS:
            section = stripped
        elif not stripped:
            continue
        elif section is None:
            summary_lines.append(stripped)
        elif section in ARGS_HEADERS:
            match = re.match(r"^(\w+)(?:\s*\([^)]*\))?:\s*(.*)$", stripped)
            if match:
                current = match.group(1)
                args[current] = match.group(2)
            elif current is not None:
                args[current] += " " + stripped
    return " ".join(summary_lines), args


def model_parameters(model: type[BaseModel], arg_docs: dict[str, str]) -> dict[str, Any]:
    """The `parameters` JSON Schema of an argument model, self-contained (`$defs` kept)."""
    json_schema = model.model_json_schema()  # properties named by alias (pydantic's default)
    properties: dict[str, Any] = {}
    for prop, spec in json_schema["properties"].items():
        spec = {k: v for k, v in spec.items() if k != "title"}
        if prop in arg_docs:
            spec["description"] = arg_docs[prop]
        properties[prop] = spec
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    parameters["required"] = json_schema.get("required", [])
    parameters["additionalProperties"] = False
    if "$defs" in json_schema:  # the targets of the `#/$defs/...` refs above
        parameters["$defs"] = json_schema["$defs"]
    return parameters


# ---- errors the agent reads ------------------------------------------------------------
def describe_value(value: Any) -> str:
    """`string 'Alice Smith'`, `integer 42`, ... (JSON type names, clipped; never raises)."""
    type_name = JSON_TYPE_NAMES.get(type(value), type(value).__name__)
    if value is None or isinstance(value, bool):  # as the agent wrote them: null, true, false
        return "null" if value is None else f"{type_name} {str(value).lower()}"
    try:
        text = repr(value) if isinstance(value, str) else str(value)
    except Exception:  # ints past 4,300 digits, objects whose __str__ raises
        text = "(unprintable)"
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type_name} {text}"


def parameter_path(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc) or "arguments"


def missing_message(tool_name: str, path: str) -> str:
    return f"Missing required parameter '{path}' for tool '{tool_name}'"


def unexpected_message(tool_name: str, path: str, expected: Sequence[str]) -> str:
    return (
        f"Unexpected parameter '{path}' for tool '{tool_name}' "
        f"(expected parameters: {', '.join(expected) or 'none'})"
    )


def mismatch_message(path: str, expected: str, value: Any) -> str:
    return f"Type mismatch in parameter '{path}': expected {expected}, got {describe_value(value)}"


def invalid_message(path: str, detail: str) -> str:
    return f"Invalid value for parameter '{path}': {detail[:200]}"


def unchecked_error(tool_name: str, exc: Exception) -> CallError:
    """Arguments a validator choked on (recursion, values that cannot be printed)."""
    message = f"ERROR: Arguments of tool '{tool_name}' could not be checked: {type(exc).__name__}"
    return CallError(ErrorKind.INVALID_VALUE, message)


def join_errors(errors: list[tuple[ErrorKind, str]]) -> CallError:
    """One agent-readable message; the first error sets the kind."""
    return CallError(errors[0][0], "ERROR: " + "; ".join(message for _, message in errors))


def describe_validation_error(
    tool_name: str, parameter_names: Sequence[str], exc: ValidationError
) -> CallError:
    """Turn pydantic's errors into one agent-readable message."""
    errors: list[tuple[ErrorKind, str]] = []
    for error in exc.errors():
        param = parameter_path(error["loc"])
        etype = error["type"]
        if etype == "missing":
            errors.append((ErrorKind.MISSING_ARGUMENT, missing_message(tool_name, param)))
        elif etype == "extra_forbidden":
            message = unexpected_message(tool_name, param, parameter_names)
            errors.append((ErrorKind.UNEXPECTED_ARGUMENT, message))
        elif etype in EXPECTED_BY_ERROR:
            message = mismatch_message(param, EXPECTED_BY_ERROR[etype], error["input"])
            errors.append((ErrorKind.TYPE_MISMATCH, message))
        else:
            errors.append((ErrorKind.INVALID_VALUE, invalid_message(param, error["msg"])))
    return join_errors(errors)


def render_tools_prompt(schemas: list[dict[str, Any]]) -> str:
    """The tool list as text, Hermes/Qwen style, for policies that get no `tools=` argument."""
    lines = [
        "# Tools",
        "",
        "You may call one or more functions. Function signatures are inside <tools></tools>:",
        "<tools>",
        *(json.dumps(schema, sort_keys=True) for schema in schemas),
        "</tools>",
        "",
        "For each call, return a JSON object inside <tool_call></tool_call> tags:",
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>',
    ]
    return "\n".join(lines)
