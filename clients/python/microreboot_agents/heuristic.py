"""A scripted heuristic agent over MCP: no model, a few rules an on-call engineer might follow.

1. Read the incident, the kernel's recovery scope and the replica states of its services.
2. Suspects: scope services with unhealthy or not-live replicas; failing that, the scope services
   with the highest error rate over the last 20 s; the symptom last.
3. For the first suspect, propose a restart (drained first and restored after when it is a hub);
   on a rejection, try the next suspect; escalate when none is accepted.
4. Wait in 15 s steps until monitoring resolves the incident (at most 12 waits), then resolve.

In raw mode it sends ``kubectl`` restarts instead. Run it against a server it starts::

    python -m microreboot_agents.heuristic -- microreboot mcp --app socialNetwork --fault crash

or with no server command when ``microreboot eval`` starts it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from .client import ToolError, call, connect


def _restart_plan(incident: str, service: str, hub: bool) -> dict[str, Any]:
    restart = {"restart": {"service": service, "replicas": "all"}}
    if not hub:
        return {"incident": incident, "stages": [[restart]]}
    return {
        "incident": incident,
        "stages": [
            [{"drain": {"service": service, "replicas": "all"}}],
            [restart],
            [{"restore_traffic": {"service": service}}],
        ],
    }


async def suspects(session, incident: dict[str, Any]) -> list[str]:
    """Scope services ordered by how broken they look."""
    scope = await call(session, "scope")
    members = [m for g in scope["groups"] for m in g["members"]]
    replicas = await call(session, "replicas", names=members)
    unhealthy = [
        s["service"]
        for s in replicas["services"]
        if any(r["state"] != "running" or not r["live"] for r in s["replicas"])
    ]
    now = incident["now_s"]
    metrics = await call(session, "metrics", from_s=max(0.0, now - 20), to_s=now, names=members)
    rate: dict[str, float] = {}
    for row in metrics["rows"]:
        if row["kind"] == "service":
            rate[row["name"]] = max(rate.get(row["name"], 0.0), row["error_rate"])
    by_errors = sorted((s for s in members if rate.get(s, 0) > 0), key=lambda s: -rate[s])
    order: list[str] = []
    for s in unhealthy + by_errors + [incident["symptom"]]:
        if s not in order:
            order.append(s)
    return order


async def run(server_cmd: list[str] | None, mode: str) -> int:
    async with connect(server_cmd) as session:
        incident = await call(session, "incident")
        acted = False
        for service in (await suspects(session, incident))[:3]:
            if mode == "raw":
                await call(session, "kubectl", command={"command": "restart", "service": service})
                acted = True
                break
            graph = await call(session, "graph", service=service, depth=1)
            hub = any(s["name"] == service and s["hub"] for s in graph["services"])
            verdict = await call(
                session, "propose_plan", plan=_restart_plan(incident["incident"], service, hub)
            )
            if verdict["accepted"]:
                acted = True
                break
        if not acted:
            await call(session, "escalate", reason="no restart plan was accepted")
        status = incident
        for _ in range(12):
            status = await call(session, "wait", seconds=15)
            if status["status"] == "resolved":
                break
        await call(session, "resolve", summary=f"restart; incident {status['status']}")
        return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["typed", "raw"], default="typed")
    p.add_argument("server", nargs="*", help="command that starts the server (after --)")
    a = p.parse_args(argv)
    try:
        return asyncio.run(run(a.server or None, a.mode))
    except ToolError as e:
        print(f"heuristic agent: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
