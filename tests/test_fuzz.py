"""Property- and grammar-based fuzzing (issue 10): nothing a model or a file says crashes us.

* every registered env (`envs.ENVS.names()`) plays whole episodes of `tools.fuzz` turns
  (near-valid calls from its own tool schemas, mutated; hostile dicts; pathological
  text): no exception, every message UTF-8 text, the trajectory saves and loads back;
* the parser, on arbitrary text (lone surrogates included) and on arbitrary Python-built
  OpenAI messages (non-string keys, bytes, NaN, nesting): never raises, every parsed call
  is an error or has plain-JSON arguments;
* the scenario loader and the rules parser, on mutated copies of the real files: a
  result or their own error type (which names the file), never anything else.

Fast by default (tens of examples each); `-m slow` runs the long mode (thousands).
"""

from __future__ import annotations

import json
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import envs
from core.records import Trajectory
from evals.rules import RuleSyntaxError, parse_rules
from scenarios.loader import ScenarioFileError, load_scenarios
from scenarios.refund import REFUND_SLICES, RefundScenario
from tools.calls import MAX_CALLS_PER_TURN, parse_action
from tools.fuzz import HOSTILE_TEXT, random_action

REPO = Path(__file__).resolve().parent.parent
CASES_TEXT = (REPO / "scenarios/data/refund_agent/cases.yaml").read_text()
EVAL_LINES = (REPO / "scenarios/data/refund_agent/eval.jsonl").read_text().splitlines()[:3]
RULES_TEXT = "\n".join(p.read_text() for p in sorted((REPO / "promotion").glob("*.rules")))
FAST, SLOW = 25, 1500
CHARACTERS = st.one_of(
    st.characters(),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),  # lone surrogates
    st.sampled_from(list('<>/{}[]":,\\')),
)
JSONISH = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(CHARACTERS, max_size=8),
        st.binary(max_size=4),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(
            st.one_of(st.text(CHARACTERS, max_size=5), st.integers()), inner, max_size=4
        ),
    ),
    max_leaves=20,
)


def run_property(
    examples: int, strategy: st.SearchStrategy[Any], check: Callable[[Any], None]
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=examples == FAST,  # the fast mode is reproducible run to run
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(strategy)
    def prop(value: Any) -> None:
        check(value)

    prop()


# ---- every env, whole episodes ----------------------------------------------------------


def play_fuzzed_episode(env_name: str, seed: int) -> None:
    rng = random.Random(seed)
    env = envs.make_raw(env_name, split="eval")
    start = env.begin(None, seed=seed)
    schemas, limit = start.tools, env.action_space.max_length
    result = None
    for _ in range(env.max_turns + 1):
        result = env.advance(random_action(rng, schemas, [42, 1001, 90412], max_length=limit))
        for message in [result.assistant, *result.new_messages]:
            assert isinstance(message["content"], str)
            message["content"].encode("utf-8")  # no lone surrogate leaks out
        if result.done:
            break
    assert result is not None and result.done  # the turn limit ends every episode
    line = result.trajectory.to_json()
    line.encode("utf-8")
    assert Trajectory.from_json(line).to_json() == line  # saved and loaded back unchanged


@pytest.mark.parametrize("env_name", envs.ENVS.names())
def test_every_env_survives_fuzzed_episodes(env_name):
    run_property(FAST, st.integers(0, 2**63), lambda seed: play_fuzzed_episode(env_name, seed))


@pytest.mark.slow
@pytest.mark.parametrize("env_name", envs.ENVS.names())
def test_every_env_survives_fuzzed_episodes_long(env_name):
    run_property(SLOW, st.integers(0, 2**63), lambda seed: play_fuzzed_episode(env_name, seed))


# ---- the parser, both action formats ----------------------------------------------------


def check_parsed(action: Any) -> None:
    parsed = parse_action(action)
    parsed.text.encode("utf-8")
    parsed.content.encode("utf-8")
    assert len(parsed.calls) <= MAX_CALLS_PER_TURN + 1
    for call in parsed.calls:
        call.raw.encode("utf-8")
        if call.error_kind is None:
            assert isinstance(call.name, str) and call.name
            json.dumps(call.arguments, allow_nan=False).encode("utf-8")  # plain JSON
        else:
            assert call.error and call.error.startswith("ERROR: ")


TEXT_ACTIONS = st.one_of(
    st.text(CHARACTERS, max_size=300),
    st.lists(
        st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(CHARACTERS, max_size=20)), max_size=30
    ).map("".join),
)
DICT_ACTIONS = st.builds(
    lambda content, name, arguments, extra: {
        "role": "assistant",
        "content": content,
        "tool_calls": [{"id": extra, "function": {"name": name, "arguments": arguments}}],
    },
    st.one_of(st.none(), st.text(CHARACTERS, max_size=30), JSONISH),
    st.one_of(st.sampled_from(["calculator", "get_order"]), st.text(CHARACTERS, max_size=10)),
    st.one_of(JSONISH, st.text(CHARACTERS, max_size=60), JSONISH.map(lambda v: _dumps(v))),
    JSONISH,
)


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return "{}"


@pytest.mark.parametrize(
    "examples",
    [pytest.param(FAST * 8, id="fast"), pytest.param(SLOW * 20, id="long", marks=pytest.mark.slow)],
)
def test_the_parser_never_raises_on_text(examples):
    run_property(examples, TEXT_ACTIONS, check_parsed)


@pytest.mark.parametrize(
    "examples",
    [pytest.param(FAST * 8, id="fast"), pytest.param(SLOW * 20, id="long", marks=pytest.mark.slow)],
)
def test_the_parser_never_raises_on_python_built_messages(examples):
    run_property(examples, DICT_ACTIONS, check_parsed)


@pytest.mark.parametrize(
    "examples",
    [pytest.param(FAST * 8, id="fast"), pytest.param(SLOW * 20, id="long", marks=pytest.mark.slow)],
)
def test_the_parser_never_raises_on_grammar_fuzzed_turns(examples):
    schemas = [
        s for name in envs.ENVS.names() for s in envs.make_raw(name, split="eval").toolbox.schemas
    ]
    run_property(
        examples,
        st.integers(0, 2**63),
        lambda seed: check_parsed(random_action(random.Random(seed), schemas, [42])),
    )


# ---- the scenario loader and the rules parser, on mutated real files ---------------------

YAML_FRAGMENTS = [
    "2026-02-30",
    "&a [*a]",
    "!!python/object:os.system",
    "\t",
    "{",
    "- ",
    ": :",
    "'\\ud800'",
    '"\\ud800"',
    "9" * 400,
    "[" * 200,
    "~",
    "slices: [nope]",
    "\x00",
]


def mutate(text: str, cuts: list[tuple[int, int, str]]) -> str:
    for start, length, fragment in cuts:
        at = start % (len(text) + 1)
        text = text[:at] + fragment + text[at + length % 40 :]
    return text


MUTATIONS = st.lists(
    st.tuples(
        st.integers(0, 10**6),
        st.integers(0, 40),
        st.one_of(st.sampled_from(YAML_FRAGMENTS), st.text(CHARACTERS, max_size=6)),
    ),
    min_size=1,
    max_size=4,
)


def check_loader(args: tuple[str, list[tuple[int, int, str]]]) -> None:
    suffix, cuts = args
    original = CASES_TEXT if suffix == ".yaml" else "\n".join(EVAL_LINES) + "\n"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"cases{suffix}"
        path.write_bytes(mutate(original, cuts).encode("utf-8", "surrogatepass"))
        try:
            load_scenarios(path, RefundScenario, known_slices=REFUND_SLICES)
        except ScenarioFileError as exc:
            assert str(exc).startswith(str(path))  # the error names the file


@pytest.mark.parametrize(
    "examples",
    [pytest.param(FAST * 4, id="fast"), pytest.param(SLOW, id="long", marks=pytest.mark.slow)],
)
def test_the_scenario_loader_raises_only_its_own_error_naming_the_file(examples):
    run_property(examples, st.tuples(st.sampled_from([".yaml", ".jsonl"]), MUTATIONS), check_loader)


def check_rules(cuts: list[tuple[int, int, str]]) -> None:
    try:
        parse_rules(mutate(RULES_TEXT, cuts), "gate.rules")
    except RuleSyntaxError as exc:
        assert str(exc).startswith("gate.rules:")


@pytest.mark.parametrize(
    "examples",
    [pytest.param(FAST * 8, id="fast"), pytest.param(SLOW * 4, id="long", marks=pytest.mark.slow)],
)
def test_the_rules_parser_raises_only_its_own_error_naming_the_file(examples):
    run_property(examples, MUTATIONS, check_rules)
