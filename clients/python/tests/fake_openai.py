"""A small fake OpenAI-compatible chat server for tests (no real model is available here).

Its "model" is a fixed script over the conversation: read the incident, read replica states,
restart the first service with a replica that is not running (drained first and restored
after when the kernel's answer says it is a hub), wait until the incident is resolved, then
answer without a tool call. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _tool_call(n: int, name: str, args: dict) -> dict:
    return {"id": f"call_{n}", "type": "function",
            "function": {"name": name, "arguments": json.dumps(args, sort_keys=True)}}


def decide(messages: list[dict]) -> dict:
    tool_msgs = [m for m in messages if m["role"] == "tool"]
    n = len(tool_msgs)
    results = [json.loads(m["content"]) if m["content"].startswith("{") else {} for m in tool_msgs]
    if n == 0:
        return {"role": "assistant", "content": None, "tool_calls": [_tool_call(n, "incident", {})]}
    if n == 1:
        return {"role": "assistant", "content": None, "tool_calls": [_tool_call(n, "replicas", {})]}
    if n == 2:
        incident, replicas = results[0], results[1]
        down = next((s["service"] for s in replicas["services"]
                     if any(r["state"] != "running" for r in s["replicas"])), incident["symptom"])
        plan = {"incident": incident["incident"],
                "stages": [[{"restart": {"service": down, "replicas": "all"}}]]}
        return {"role": "assistant", "content": None,
                "tool_calls": [_tool_call(n, "propose_plan", {"plan": plan})]}
    last = results[-1]
    if last.get("accepted") is False and any(
            v["rule"] == "R3-drain-before-restart" for v in last.get("violations", [])):
        # Read the kernel's feedback: drain the hub first and restore its traffic after.
        incident, down = results[0], last["violations"][0]["target"]
        plan = {"incident": incident["incident"],
                "stages": [[{"drain": {"service": down, "replicas": "all"}}],
                           [{"restart": {"service": down, "replicas": "all"}}],
                           [{"restore_traffic": {"service": down}}]]}
        return {"role": "assistant", "content": None,
                "tool_calls": [_tool_call(n, "propose_plan", {"plan": plan})]}
    if last.get("status") == "resolved" or n > 14:
        return {"role": "assistant", "content": "The incident is resolved.", "tool_calls": None}
    return {"role": "assistant", "content": None, "tool_calls": [_tool_call(n, "wait", {"seconds": 15})]}


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        reply = {"choices": [{"index": 0, "message": decide(body["messages"]),
                              "finish_reason": "stop"}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class FakeOpenAI:
    """``with FakeOpenAI() as url:`` — a base URL like ``http://127.0.0.1:PORT/v1``."""

    def __enter__(self) -> str:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
