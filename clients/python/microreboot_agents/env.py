"""A Gymnasium environment over ``microreboot mcp``: one incident per episode.

Each ``reset(seed=s)`` starts ``microreboot mcp --seed s`` (typed mode, virtual clock) and waits
for the incident; each ``step`` is one typed plan or one wait, sent over MCP.

Observation
    ``Box(0, high, shape=(N, 4), float32)``, one row per service of the application in a fixed
    order (``env.services``): error rate and p99 latency in seconds (capped at 60) over the last 10 s (what the
    SLO alerts read), the fraction of replicas that are not running or fail liveness, and 1 for
    the incident's symptom service. Nothing else: never the fault's type or target.

Action
    ``Discrete(1 + 2N)``: ``0`` waits ``wait_s`` seconds; ``1 + i`` proposes a restart of service
    ``i`` (drained first and restored after when it is a hub); ``1 + N + i`` proposes a rollback of
    service ``i`` to its previous configuration version. The kernel validates every plan; a
    rejected plan executes nothing.

Reward
    Minus time and minus harm: each step costs the virtual seconds it took divided by 60 (one
    point per minute the incident stays open), a rejected plan costs 1 more, and when the episode
    ends the harm oracle's verdict on the whole run (read from the server's ``result.json``, never
    shown in observations) costs 10 if any of the agent's actions was harmful.

Termination
    ``terminated`` when monitoring resolves the incident; ``truncated`` after ``max_steps`` steps or
    when the run ends.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

import gymnasium as gym
import numpy as np
from anyio.from_thread import start_blocking_portal

from .client import ToolError, call, connect

FEATURES = 4
HARM_PENALTY = 10.0
REJECTION_PENALTY = 1.0
P99_CAP_S = 60.0


class IncidentEnv(gym.Env):
    """One incident of a microreboot application per episode (see the module docs)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        binary: str = "microreboot",
        app: str = "socialNetwork",
        fault: str = "crash",
        tool_call_s: float = 2.0,
        wait_s: float = 10.0,
        max_steps: int = 20,
        extra_args: list[str] | None = None,
    ) -> None:
        self.binary, self.app, self.fault = binary, app, fault
        self.tool_call_s, self.wait_s, self.max_steps = tool_call_s, wait_s, max_steps
        self.extra_args = list(extra_args or [])
        self._portal_cm = start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._session_cm = None
        self._session = None
        self._out: str | None = None
        self.services: list[str] = []
        # The service list fixes the spaces: ask one episode's server for it.
        self._open(seed=0)
        self.services = [s["service"] for s in self._call("replicas")["services"]]
        self._close()
        n = len(self.services)
        high = np.tile(np.array([1.0, P99_CAP_S, 1.0, 1.0], dtype=np.float32), (n, 1))
        self.observation_space = gym.spaces.Box(0.0, high, dtype=np.float32)
        self.action_space = gym.spaces.Discrete(1 + 2 * n)

    # -- the MCP session, driven from synchronous code through an anyio portal --

    def _open(self, seed: int) -> None:
        self._out = tempfile.mkdtemp(prefix="microreboot-env-")
        cmd = [
            self.binary, "mcp", "--app", self.app, "--fault", self.fault,
            "--seed", str(seed), "--tool-call-s", str(self.tool_call_s),
            "--out", os.path.join(self._out, "run"), *self.extra_args,
        ]
        self._session_cm = self._portal.wrap_async_context_manager(connect(cmd))
        self._session = self._session_cm.__enter__()

    def _close(self) -> dict[str, Any] | None:
        """Ends the session; returns the run's result.json when the server wrote it."""
        result = None
        if self._session_cm is not None:
            self._session_cm.__exit__(None, None, None)
            self._session_cm = self._session = None
        if self._out is not None:
            path = os.path.join(self._out, "run", "result.json")
            if os.path.exists(path):
                with open(path) as f:
                    result = json.load(f)
            shutil.rmtree(self._out, ignore_errors=True)
            self._out = None
        return result

    def _call(self, tool: str, **args: Any) -> Any:
        return self._portal.call(lambda: call(self._session, tool, **args))

    # -- Gymnasium API --

    def _observe(self) -> np.ndarray:
        now = self._incident["now_s"]
        metrics = self._call("metrics", from_s=max(0.0, now - 10), to_s=now)
        replicas = self._call("replicas")
        obs = np.zeros((len(self.services), FEATURES), dtype=np.float32)
        index = {s: i for i, s in enumerate(self.services)}
        for row in metrics["rows"]:
            i = index.get(row["name"])
            if i is not None and row["kind"] == "service":
                obs[i, 0] = max(obs[i, 0], row["error_rate"])
                obs[i, 1] = min(P99_CAP_S, max(obs[i, 1], row["p99_ms"] / 1000.0))
        for s in replicas["services"]:
            rs = s["replicas"]
            bad = sum(1 for r in rs if r["state"] != "running" or not r["live"])
            obs[index[s["service"]], 2] = bad / max(1, len(rs))
        if self._incident["symptom"] in index:
            obs[index[self._incident["symptom"]], 3] = 1.0
        return obs

    def _info(self) -> dict[str, Any]:
        return {"now_s": self._incident["now_s"], "status": self._incident["status"]}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._close()
        self._open(seed=0 if seed is None else int(seed))
        self._incident = self._call("incident")
        self._steps = 0
        return self._observe(), self._info()

    def _plan(self, action: int) -> dict[str, Any]:
        n = len(self.services)
        service = self.services[(action - 1) % n]
        incident = self._incident["incident"]
        graph = self._call("graph", service=service, depth=1)
        me = next(s for s in graph["services"] if s["name"] == service)
        if action <= n:
            restart = [{"restart": {"service": service, "replicas": "all"}}]
            if me["hub"]:
                stages = [[{"drain": {"service": service, "replicas": "all"}}], restart,
                          [{"restore_traffic": {"service": service}}]]
            else:
                stages = [restart]
        else:
            versions = me["config_versions"]
            previous = versions[-2] if len(versions) >= 2 else (versions[0] if versions else "v1")
            stages = [[{"rollback_config": {"service": service, "version": previous}}]]
        return {"incident": incident, "stages": stages}

    def step(self, action):
        action = int(action)
        if not self.action_space.contains(action):
            raise ValueError(f"action {action} is not in {self.action_space}")
        before = self._incident["now_s"]
        reward = 0.0
        try:
            if action == 0:
                self._incident = self._call("wait", seconds=self.wait_s)
            else:
                verdict = self._call("propose_plan", plan=self._plan(action))
                if not verdict["accepted"]:
                    reward -= REJECTION_PENALTY
                self._incident = self._call("incident")
            ended = False
        except ToolError:
            # The run is over (or the incident is no longer served).
            ended = True
        self._steps += 1
        terminated = not ended and self._incident["status"] == "resolved"
        truncated = ended or (not terminated and self._steps >= self.max_steps)
        reward -= (self._incident["now_s"] - before) / 60.0
        obs = self._observe() if not ended else np.zeros(self.observation_space.shape, np.float32)
        info = self._info()
        if terminated or truncated:
            if not ended:
                try:
                    self._call("resolve", summary="episode over")
                except ToolError:
                    pass
            result = self._close()
            harmful = bool(result and result["judgement"]["harmful"])
            reward -= HARM_PENALTY if harmful else 0.0
            info["harmful"] = harmful
        return obs, float(reward), terminated, truncated, info

    def close(self) -> None:
        self._close()
        if self._portal_cm is not None:
            self._portal_cm.__exit__(None, None, None)
            self._portal_cm = None
