"""Typed tools: a Python function whose arguments are a pydantic model.

`@tool` turns `def check_refund(ctx, customer_id: int, order_id: int) -> dict` into a
`Tool`: the first parameter receives the episode's sandbox, the rest become a strict
pydantic argument model, exported as an OpenAI-style JSON function schema (descriptions
come from the Google-style docstring). `Tool.validate(arguments)` never raises: it returns
the validated keyword arguments or a `CallError` whose message names the parameter,
for example ``ERROR: Type mismatch in parameter 'customer_id': expected integer, got
string 'Alice Smith'``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ConfigDict, ValidationError, create_model

from core.records import ErrorKind, Termination

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


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    fn: Callable[..., Any]
    params: type
    version: str = "1.0"
    ends_episode: Termination | None = None
    schema: dict[str, Any] = field(default_factory=dict)

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any] | CallError:
        try:
            model = self.params.__pydantic_validator__.validate_python(arguments, strict=True)
        except ValidationError as exc:
            return describe_validation_error(self, exc)
        return dict(model.__dict__)

    def __call__(self, ctx: Any, **kwargs: Any) -> Any:
        return self.fn(ctx, **kwargs)


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    version: str = "1.0",
    ends_episode: Termination | None = None,
) -> Any:
    """Decorator: build a `Tool` from a typed function `fn(ctx, **arguments)`."""

    def build(func: Callable[..., Any]) -> Tool:
        tool_name = name or func.__name__
        summary, arg_docs = parse_docstring(inspect.getdoc(func) or "")
        fields: dict[str, Any] = {}
        parameters = list(inspect.signature(func).parameters.values())[1:]  # skip ctx
        hints = inspect.get_annotations(func, eval_str=True)
        for param in parameters:
            if param.name not in hints:
                raise TypeError(f"tool '{tool_name}': parameter '{param.name}' needs a type hint")
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[param.name] = (hints[param.name], default)
        params = create_model(  # type: ignore[call-overload]
            f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid", strict=True), **fields
        )
        schema = openai_schema(tool_name, summary, params, arg_docs)
        return Tool(tool_name, summary, func, params, version, ends_episode, schema)

    return build(fn) if fn is not None else build


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its summary and `Args:` descriptions."""
    summary_lines: list[str] = []
    args: dict[str, str] = {}
    section = "summary"
    current: str | None = None
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Parameters:"):
            section = "args"
            continue
        if stripped in ("Returns:", "Raises:", "Examples:"):
            section = "other"
            continue
        if section == "summary" and stripped:
            summary_lines.append(stripped)
        elif section == "args" and stripped:
            match = re.match(r"^(\w+)(?:\s*\([^)]*\))?:\s*(.*)$", stripped)
            if match:
                current = match.group(1)
                args[current] = match.group(2)
            elif current:
                args[current] += " " + stripped
    return " ".join(summary_lines), args


def openai_schema(
    name: str, description: str, params: type, arg_docs: dict[str, str]
) -> dict[str, Any]:
    """The OpenAI / HF chat-template function schema for a tool."""
    json_schema = params.model_json_schema()  # type: ignore[attr-defined]
    properties: dict[str, Any] = {}
    for prop, spec in json_schema.get("properties", {}).items():
        spec = {k: v for k, v in spec.items() if k != "title"}
        if prop in arg_docs:
            spec["description"] = arg_docs[prop]
        properties[prop] = spec
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    parameters["required"] = json_schema.get("required", [])
    parameters["additionalProperties"] = False
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


def describe_value(value: Any) -> str:
    """`string 'Alice Smith'`, `integer 42`, ... (JSON type names, clipped)."""
    type_name = JSON_TYPE_NAMES.get(type(value), type(value).__name__)
    text = repr(value) if isinstance(value, str) else str(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type_name} {text}"


def describe_validation_error(tool_: Tool, exc: ValidationError) -> CallError:
    """Turn pydantic's errors into one agent-readable message; the first error sets the kind."""
    kinds: list[ErrorKind] = []
    messages: list[str] = []
    expected_params = ", ".join(tool_.schema["function"]["parameters"]["properties"]) or "none"
    for error in exc.errors(include_url=False):
        param = ".".join(str(part) for part in error["loc"]) or "arguments"
        etype = error["type"]
        if etype == "missing":
            kinds.append(ErrorKind.MISSING_ARGUMENT)
            messages.append(f"Missing required parameter '{param}' for tool '{tool_.name}'")
        elif etype == "extra_forbidden":
            kinds.append(ErrorKind.UNEXPECTED_ARGUMENT)
            messages.append(
                f"Unexpected parameter '{param}' for tool '{tool_.name}' "
                f"(expected parameters: {expected_params})"
            )
        elif etype in EXPECTED_BY_ERROR:
            kinds.append(ErrorKind.TYPE_MISMATCH)
            messages.append(
                f"Type mismatch in parameter '{param}': expected {EXPECTED_BY_ERROR[etype]}, "
                f"got {describe_value(error['input'])}"
            )
        else:
            kinds.append(ErrorKind.INVALID_VALUE)
            messages.append(f"Invalid value for parameter '{param}': {error['msg']}")
    return CallError(kinds[0], "ERROR: " + "; ".join(messages))


def render_tools_prompt(schemas: list[dict[str, Any]]) -> str:
    """The tool list as text, Hermes/Qwen style, for policies that get no `tools=` argument."""
    import json

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
