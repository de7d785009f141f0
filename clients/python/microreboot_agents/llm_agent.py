"""An agent that plans with any OpenAI-compatible chat API, using the testbed's MCP tools.

The model gets the server's tools as OpenAI function tools; each tool call it makes is sent over
MCP and the answer goes back as a ``tool`` message, until the model answers without a tool call
(or ``--max-turns``), then the agent calls ``resolve``. The HTTP client is the standard
library's; ``--base-url`` is e.g. ``http://127.0.0.1:8000/v1`` and the key, if any, is read from
``OPENAI_API_KEY``::

    python -m microreboot_agents.llm_agent --base-url http://127.0.0.1:8000/v1 --model M \\
        -- microreboot mcp --app socialNetwork --fault crash

The server records every exchange on a cassette (``--out``/cassette.jsonl), so a run can be
replayed without the model: ``microreboot mcp --replay cassette.jsonl``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import urllib.request
from typing import Any

from .client import connect

SYSTEM = (
    "You are an SRE on call for one incident in a microservice system. Use the tools to read "
    "the incident, metrics, replica states, traces, the dependency graph and the kernel's "
    "recovery scope; `isa` explains the plan format and rules. Fix the incident with "
    "`propose_plan` (the kernel validates it), then `wait` until the incident is resolved. "
    "Answer without a tool call when you are done."
)


def chat(base_url: str, model: str, messages: list, tools: list, timeout_s: float) -> dict:
    body = json.dumps(
        {"model": model, "messages": messages, "tools": tools, "temperature": 0}
    ).encode()
    req = urllib.request.Request(
        base_url.rstrip("/") + "/chat/completions",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    key = os.environ.get("OPENAI_API_KEY")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        return json.load(resp)["choices"][0]["message"]


async def run(server_cmd, base_url: str, model: str, max_turns: int, timeout_s: float) -> int:
    async with connect(server_cmd) as session:
        listed = await session.list_tools()
        tools = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description or "",
                    "parameters": getattr(t, "input_schema", None) or getattr(t, "inputSchema"),
                },
            }
            for t in listed.tools
        ]
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "An incident is open. Start with the `incident` tool."},
        ]
        for _ in range(max_turns):
            reply = await asyncio.to_thread(chat, base_url, model, messages, tools, timeout_s)
            calls = reply.get("tool_calls") or []
            messages.append(
                {"role": "assistant", "content": reply.get("content"), "tool_calls": calls or None}
            )
            if not calls:
                break
            for c in calls:
                fn = c["function"]
                try:
                    args = json.loads(fn.get("arguments") or "{}")
                except json.JSONDecodeError as e:
                    text = f"arguments are not JSON: {e}"
                else:
                    result = await session.call_tool(fn["name"], args)
                    text = "".join(getattr(x, "text", "") for x in result.content)
                messages.append({"role": "tool", "tool_call_id": c["id"], "content": text})
                if fn["name"] == "resolve":
                    return 0
        await session.call_tool("resolve", {"summary": "model finished"})
        return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base-url", required=True)
    p.add_argument("--model", default="gpt-4o-mini")
    p.add_argument("--max-turns", type=int, default=30)
    p.add_argument("--timeout-s", type=float, default=120.0)
    p.add_argument("server", nargs="*", help="command that starts the server (after --)")
    a = p.parse_args(argv)
    return asyncio.run(run(a.server or None, a.base_url, a.model, a.max_turns, a.timeout_s))


if __name__ == "__main__":
    sys.exit(main())
