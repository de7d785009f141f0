"""Bring your own agent to microreboot.

* :mod:`microreboot_agents.client` — connect to ``microreboot mcp`` (or be started by ``eval``)
  with the official ``mcp`` SDK and call its tools;
* :mod:`microreboot_agents.heuristic` — a scripted heuristic agent;
* :mod:`microreboot_agents.llm_agent` — an agent that plans with any OpenAI-compatible chat API;
* :mod:`microreboot_agents.env` — a Gymnasium environment over the same server.

See docs/AGENTS.md in the repository.
"""
