"""Scripted policies of letter_count: the expert (uses the tool) and a guesser."""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from toolgym import ScriptedPolicy, tool_call_text

QUESTION = re.compile(r"How many (\w)'s are in (\w+)\?")


class Expert(ScriptedPolicy):
    name: ClassVar[str] = "expert"

    def decide(self, messages: list[dict[str, Any]]) -> str:
        results = [m for m in messages if m.get("role") == "tool"]
        if results:
            return f"<answer>{json.loads(results[-1]['content'])}</answer>"
        letter, word = QUESTION.search(messages[1]["content"]).groups()
        return tool_call_text("count_letter", {"word": word, "letter": letter})


class Guesser(ScriptedPolicy):
    name: ClassVar[str] = "letter_guesser"

    def decide(self, messages: list[dict[str, Any]]) -> str:
        return "<answer>2</answer>"
