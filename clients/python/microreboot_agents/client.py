"""Connecting to the testbed's MCP server with the official ``mcp`` SDK.

Two ways to meet the server:

* ``server_cmd`` given: start ``microreboot mcp ...`` as a child process and talk to it over its
  stdin/stdout (the usual MCP stdio transport);
* ``server_cmd`` is ``None``: this process *was started by* ``microreboot eval`` and the server
  is on our own stdin/stdout (the same JSON-RPC messages, the spawn reversed).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, AsyncIterator, Sequence

from mcp import ClientSession, StdioServerParameters, stdio_client, stdio_server


class ToolError(Exception):
    """A tool answered with an error (bad arguments, unknown tool, session over)."""


@contextlib.asynccontextmanager
async def connect(server_cmd: Sequence[str] | None) -> AsyncIterator[ClientSession]:
    """An initialised MCP client session with the testbed."""
    if server_cmd:
        params = StdioServerParameters(command=server_cmd[0], args=list(server_cmd[1:]))
        transport = stdio_client(params)
    else:
        transport = stdio_server()
    async with transport as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> Any:
    """Calls ``tool`` and returns its JSON answer; raises :class:`ToolError` on an error answer."""
    result = await session.call_tool(tool, arguments)
    text = "".join(getattr(c, "text", "") for c in result.content)
    # mcp 2.x names the flag is_error, 1.x isError.
    if getattr(result, "is_error", None) or getattr(result, "isError", False):
        raise ToolError(text)
    return json.loads(text)
