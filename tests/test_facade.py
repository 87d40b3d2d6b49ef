"""toolgym's facade: everything docs/writing-an-env.md tells an env author to use is
importable from `toolgym`, so an env package needs no import from the layers behind it."""

from __future__ import annotations

import pytest

import toolgym

GUIDE_NAMES = (  # named in docs/writing-an-env.md
    "Message",
    "RewardFn",
    "Scenario",
    "ScriptedPolicy",
    "Tool",
    "ToolEnv",
    "Trajectory",
    "tool",
    "tool_call_text",
    "tool_execution",
    "tool_format",
    "load_scenarios",
    "ScenarioFileError",
    "ToolInputError",
    "ToolResult",
    "Execution",
    "InfrastructureError",
    "tool_from_json_schema",
    "register_env",
    "register_policy",
)


@pytest.mark.parametrize("name", GUIDE_NAMES)
def test_the_guide_s_names_come_from_toolgym(name: str) -> None:
    assert name in toolgym.__all__
    assert getattr(toolgym, name) is not None


def test_tool_from_json_schema_from_the_facade_builds_a_tool() -> None:
    description = {
        "name": "list_units",
        "description": "Units of a dimension.",
        "inputSchema": {
            "type": "object",
            "properties": {"dimension": {"type": "string", "enum": ["length", "mass"]}},
            "required": ["dimension"],
        },
    }
    built = toolgym.tool_from_json_schema(description, fn=lambda ctx, dimension: [dimension])
    assert isinstance(built, toolgym.Tool) and built.name == "list_units"
