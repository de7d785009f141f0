"""The example agents over ``microreboot mcp``, and the Gymnasium environment."""

import json
import os
import pathlib
import subprocess
import sys

from gymnasium.utils.env_checker import check_env

from microreboot_agents import heuristic, llm_agent
from microreboot_agents.env import IncidentEnv

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from fake_openai import FakeOpenAI  # noqa: E402

DATA = pathlib.Path(__file__).parent / "data"
CASSETTE = DATA / "llm_agent.cassette.jsonl"


def server(binary, out, *extra):
    return [binary, "mcp", "--app", "socialNetwork", "--fault", "crash", "--seed", "1",
            "--out", str(out), *extra]


def test_heuristic_agent_resolves_a_crash_on_social_network(binary, tmp_path):
    assert heuristic.main(["--", *server(binary, tmp_path / "run")]) == 0
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["agent_failure"] is None
    assert result["incidents"] and all(i["resolved_at_s"] is not None for i in result["incidents"])
    assert result["judgement"]["harmful"] is False
    lines = [json.loads(line) for line in (tmp_path / "run" / "cassette.jsonl").read_text().splitlines()]
    plans = [x["exchange"] for x in lines if "exchange" in x and x["exchange"]["tool"] == "propose_plan"]
    assert plans and json.loads(plans[-1]["result"])["accepted"] is True


def test_llm_agent_run_matches_its_committed_cassette_and_replays(binary, tmp_path):
    with FakeOpenAI() as url:
        rc = llm_agent.main(["--base-url", url, "--model", "fake", "--", *server(binary, tmp_path / "live")])
    assert rc == 0
    live = (tmp_path / "live" / "cassette.jsonl").read_bytes()
    if os.environ.get("MICROREBOOT_RECORD") == "1":
        CASSETTE.write_bytes(live)
    # Everything but the configuration hash, which changes with any new key in eval.toml
    # (a replay checks every answer instead).
    def comparable(data: bytes) -> list:
        lines = [json.loads(line) for line in data.decode().splitlines()]
        lines[0]["cassette"].pop("config_hash")
        return lines

    assert comparable(live) == comparable(CASSETTE.read_bytes()), (
        "re-record with MICROREBOOT_RECORD=1 if the simulator changed"
    )
    # Replay without the agent (or the model): the same exchanges, byte for byte.
    subprocess.run([binary, "mcp", "--replay", str(CASSETTE), "--out", str(tmp_path / "replay")],
                   check=True, stdin=subprocess.DEVNULL)
    assert (tmp_path / "replay" / "cassette.jsonl").read_bytes() == CASSETTE.read_bytes()
    assert (tmp_path / "replay" / "result.json").read_bytes() == (tmp_path / "live" / "result.json").read_bytes()


def test_gymnasium_env_passes_check_env(binary, tmp_path):
    # Shorter runs: each episode's server simulates its run to the end to judge harm.
    config = tmp_path / "short.toml"
    config.write_text("[online]\nrun_s = 200.0\n")
    env = IncidentEnv(binary=binary, max_steps=4, extra_args=["--config", str(config)])
    try:
        check_env(env, skip_render_check=True)
        obs, info = env.reset(seed=1)
        assert obs.shape == (len(env.services), 4)
        restart_symptom = 1 + env.services.index(env._incident["symptom"])
        _, reward, _, _, _ = env.step(restart_symptom)
        assert reward < 0
    finally:
        env.close()
