"""Every role of a multi-agent env as a PettingZoo AEC agent (`pip install toolgym[multiagent]`).

    from envs.pettingzoo_aec import aec_env
    env = aec_env("refund_handoff", split="eval")
    env.reset(seed=0)
    for agent in env.agent_iter():
        observation, reward, termination, truncation, info = env.last()
        env.step(None if termination or truncation else my_policy(agent, observation))

Contract
--------
* Agents are the env's roles (`possible_agents`, in declared order); `agent_selection` is
  the role in control. An observation is that role's own view (a list of chat messages,
  `envs.base.Conversation`); an action is its assistant turn (text or an OpenAI-style
  message dict, `envs.base.AssistantText`). `infos[agent]["tools"]` holds its tool schemas.
* Rewards are sparse: 0 until the episode ends, then each agent gets the env's weighted
  total scored with itself as the learner (`role_execution` judges its own job), and
  `infos[agent]` gets the reward components and the finished trajectory.
* The episode ends (every agent terminated) when the env's episode ends: the final answer
  to the user, an episode-ending tool; it is truncated after `max_cycles` turns of all roles
  together. Dead agents then step with `None`, as PettingZoo's AEC contract says.
* `reset(seed, options)`: `options["scenario"]` / `options["scenario_id"]` pick a scenario,
  otherwise it is drawn with the seed. The same seed gives the same episode.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pettingzoo import AECEnv

from envs.multi_agent import MultiAgentEnv


class ChatView(list):  # type: ignore[type-arg]
    """A role's view: a plain list of chat messages, with the `dtype` of its space (None):
    PettingZoo's api_test compares an observation's dtype with its space's."""

    dtype = None


class HandoffAEC(AECEnv):
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "is_parallelizable": False}

    def __init__(self, env: MultiAgentEnv, *, max_cycles: int = 30) -> None:
        super().__init__()
        self.env = env
        self.max_cycles = max_cycles
        self.metadata = {**self.metadata, "name": env.env_name}
        self.possible_agents = [role.name for role in env.roles]
        env.drive_roles(self.possible_agents)
        self.render_mode = env.render_mode
        self._cycles = 0

    def observation_space(self, agent: str) -> Any:
        return self.env.observation_space

    def action_space(self, agent: str) -> Any:
        return self.env.action_space

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        options = options or {}
        scenario = options.get("scenario", options.get("scenario_id"))
        self.env.begin(scenario, seed=seed)
        self.agents = list(self.possible_agents)
        self.rewards = {a: 0.0 for a in self.agents}
        self._cumulative_rewards = {a: 0.0 for a in self.agents}
        self.terminations = {a: False for a in self.agents}
        self.truncations = {a: False for a in self.agents}
        self.infos = {a: {"tools": self.env.role_schemas(a)} for a in self.agents}
        self._cycles = 0
        self.agent_selection = self.env.active_role or self.agents[0]

    def observe(self, agent: str) -> list[dict[str, Any]]:
        return ChatView(self.env.view(agent))

    def step(self, action: Any) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        self._cumulative_rewards[agent] = 0.0
        self.env.play_turn(action)
        self._cycles += 1
        cut = self._cycles >= self.max_cycles
        if self.env.ended is not None or cut:
            self._finish(truncated=self.env.ended is None)
        else:
            self.agent_selection = self.env.active_role or agent
            self._clear_rewards()
        self._accumulate_rewards()

    def _finish(self, *, truncated: bool) -> None:
        trajectory = self.env.close_episode()
        by_role = trajectory.info.get("learner")
        for agent in self.agents:
            trajectory.info["learner"] = agent  # score each role's own job
            total, components = self.env.rubric.score(trajectory, self.env.scenario)
            self.rewards[agent] = total
            self.infos[agent] = {
                "tools": self.env.role_schemas(agent),
                "reward_components": components,
                "trajectory": trajectory,
            }
            self.terminations[agent] = not truncated
            self.truncations[agent] = truncated
        trajectory.info["learner"] = by_role

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.agent_selection is None:
            return None
        return "\n".join(
            f"[{m['role']}] {m['content']}" for m in self.observe(self.agent_selection)
        )

    def close(self) -> None:
        self.env.close()


def aec_env(name: str, *, max_cycles: int = 30, **kwargs: Any) -> HandoffAEC:
    """A registered multi-agent env (by short name) as a PettingZoo AEC env."""
    import envs

    env = envs.make_raw(name, **kwargs)
    if not isinstance(env, MultiAgentEnv):
        raise TypeError(f"env '{name}' is not a multi-agent env (a MultiAgentEnv subclass)")
    return HandoffAEC(env, max_cycles=max_cycles)
