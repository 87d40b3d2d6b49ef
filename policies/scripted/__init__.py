"""Scripted policies by name: `make_scripted("expert")`.

`SCRIPTED_POLICIES` maps each name to its class; it is a plain dict that tests and
plugins may extend (`SCRIPTED_POLICIES["mine"] = MyPolicy`). Unknown names are a
`KeyError` that lists the known ones.
"""

from __future__ import annotations

from policies.base import ScriptedPolicy
from policies.scripted.refund import REFUND_POLICIES

SCRIPTED_POLICIES: dict[str, type[ScriptedPolicy]] = {cls.name: cls for cls in REFUND_POLICIES}
FAILURE_MODES: tuple[str, ...] = tuple(name for name in SCRIPTED_POLICIES if name != "expert")


def make_scripted(name: str) -> ScriptedPolicy:
    """A fresh scripted policy by name."""
    try:
        cls = SCRIPTED_POLICIES[name]
    except KeyError:
        known = ", ".join(sorted(SCRIPTED_POLICIES))
        raise KeyError(f"unknown scripted policy '{name}'; known policies: {known}") from None
    return cls()


__all__ = ["FAILURE_MODES", "SCRIPTED_POLICIES", "ScriptedPolicy", "make_scripted"]
