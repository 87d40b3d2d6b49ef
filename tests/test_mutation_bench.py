"""bench/mutation.py's own pure parts: the mutmut table it writes, the constants it mutates."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import mutation  # bench/ is not a package: imported from its folder

PYPROJECT = """[project]
name = "x"

[tool.mutmut]
source_paths = ["old"]
only_mutate = [
    "old.py",
]

[tool.pytest.ini_options]
addopts = "-q"
"""


def test_the_mutmut_table_is_replaced_and_the_rest_kept() -> None:
    text = mutation.with_section(PYPROJECT, mutation.mutmut_section("rewards/spec.py"))
    data = tomllib.loads(text)
    assert data["project"] == {"name": "x"}
    assert data["tool"]["pytest"] == {"ini_options": {"addopts": "-q"}}
    table = data["tool"]["mutmut"]
    assert table["only_mutate"] == ["rewards/spec.py"]
    assert table["pytest_add_cli_args_test_selection"] == ["tests/test_reward_spec.py"]
    assert table["pytest_add_cli_args"] == ["-p", "no:cacheprovider", "-m", "not slow"]
    assert "old" not in table["source_paths"] and "evals" in table["source_paths"]


def test_a_missing_mutmut_table_is_appended() -> None:
    text = mutation.with_section('[project]\nname = "x"\n', "[tool.mutmut]\nx = 1\n")
    assert tomllib.loads(text) == {"project": {"name": "x"}, "tool": {"mutmut": {"x": 1}}}


SOURCE = '''"""doc 7"""
LIMIT = 2000
WEIGHTS = {"a": 2.0, "b": -0.5}


class Settings:
    level: float = 0.95

    def method(self) -> int:
        return 3


def f(x: int = 4) -> int:
    inner = 5
    return inner
'''


def test_import_time_constants_are_module_and_class_numbers() -> None:
    found = mutation.import_time_constants(SOURCE, "pkg/mod.py")
    assert [(label, line, text) for label, line, _, _, text in found] == [
        ("pkg.mod:LIMIT", 2, "2000"),
        ("pkg.mod:WEIGHTS", 3, "2.0"),
        ("pkg.mod:WEIGHTS", 3, "0.5"),  # -0.5 is a unary minus on 0.5
        ("pkg.mod:Settings.level", 7, "0.95"),
    ]
    start, end = found[1][2], found[1][3]
    assert SOURCE.splitlines()[2][start:end] == "2.0"


def test_recheck_modes() -> None:
    assert mutation.rechecked(33, "notests") and mutation.rechecked(5, "notests")
    assert not mutation.rechecked(0, "notests")
    assert mutation.rechecked(0, "all") and not mutation.rechecked(33, "none")


def test_every_module_maps_to_test_files_that_exist() -> None:
    root = Path(__file__).resolve().parents[1]
    for module, tests in mutation.TESTS.items():
        assert (root / module).is_file(), module
        assert any((root / t).is_file() for t in tests), module
