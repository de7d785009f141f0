"""The heuristic MCP agent as an external policy of ``microreboot eval``: its row beside the
built-ins', and a second run byte-identical."""

import filecmp
import json
import subprocess
import sys


def _config(path, python):
    # 2 apps × 5 faults × 2 seeds (the --quick preset's apps, faults and seeds), constrained and
    # the heuristic agent; no offline, sweep or concurrent-recovery experiment.
    path.write_text(
        'policies = ["constrained", "heuristic"]\n'
        "graphs = []\n\n"
        "[parallel]\nseeds = 0\n\n"
        "[sensitivity]\nfactors = []\n\n"
        "[agents.heuristic]\n"
        f"command = [{json.dumps(python)}, \"-m\", \"microreboot_agents.heuristic\"]\n"
        "timeout_s = 300.0\n"
        "concurrency = 2\n"
    )


def _eval(binary, config, out, jobs):
    subprocess.run([binary, "eval", "--quick", "--config", str(config), "--out", str(out),
                    "--jobs", str(jobs)], check=True, stdin=subprocess.DEVNULL)


def test_eval_runs_the_heuristic_agent_beside_the_builtins_deterministically(binary, tmp_path):
    config = tmp_path / "eval.toml"
    _config(config, sys.executable)
    _eval(binary, config, tmp_path / "a", 2)
    _eval(binary, config, tmp_path / "b", 1)
    lines = [json.loads(line) for line in (tmp_path / "a" / "results.jsonl").read_text().splitlines()]
    online = [x for x in lines if x["experiment"] == "online"]
    agent = [x for x in online if x["policy"] == "heuristic"]
    assert len(agent) == len([x for x in online if x["policy"] == "constrained"]) == 2 * 5 * 2
    assert all(x.get("agent_failure") is None for x in agent), [x["agent_failure"] for x in agent]
    # Same seeds and drawn scenarios as the built-in.
    key = lambda x: (x["app"], x["fault"], x["seed"], json.dumps(x["scenario"]))  # noqa: E731
    assert sorted(map(key, agent)) == sorted(key(x) for x in online if x["policy"] == "constrained")
    report = (tmp_path / "a" / "REPORT.md").read_text()
    assert "### External agents" in report and "| heuristic | 20 | 0 |" in report
    for table in ["guard_ablation", "harm_online", "harm_by_app", "ttr"]:
        assert "heuristic" in (tmp_path / "a" / "tables" / f"{table}.csv").read_text(), table
    # Byte-identical across runs and thread counts.
    for name in ["results.jsonl", "timelines.csv"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    # The report, but for its one wall-clock line (how long the experiments took, on how many
    # threads).
    def report_of(run):
        text = (tmp_path / run / "REPORT.md").read_text().splitlines()
        return [line for line in text if not line.startswith("- Wall clock:")]

    assert report_of("a") == report_of("b")
    cmp = filecmp.dircmp(tmp_path / "a" / "tables", tmp_path / "b" / "tables")
    assert not cmp.diff_files and not cmp.left_only and not cmp.right_only, cmp.diff_files
