//! `microreboot eval` with external agents (`[agents.NAME]`): agents that misbehave — exit at
//! once, never answer, send garbage — end their incidents as agent failures with the reason in
//! the result line, the run completes, and the report counts the failures; bad declarations are
//! refused with the file, line and field.

mod common;
use common::microreboot;

/// A one-cell matrix (socialNetwork, crash, one seed) without offline, sweep or concurrent
/// experiments, with `agents` appended.
fn config(dir: &std::path::Path, policies: &str, agents: &str) -> std::path::PathBuf {
    let path = dir.join("eval.toml");
    std::fs::write(
        &path,
        format!(
            "seeds = 1\napps = [\"socialNetwork\"]\nfaults = [\"crash\"]\npolicies = [{policies}]\n\
             graphs = []\n\n[online]\nrun_s = 200.0\n\n[parallel]\nseeds = 0\n\n\
             [sensitivity]\nfactors = []\n\n{agents}"
        ),
    )
    .unwrap();
    path
}

#[test]
fn misbehaving_agents_end_their_incidents_as_agent_failures_and_the_run_completes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        r#""constrained", "quits", "hangs", "garbage""#,
        r#"[agents.quits]
command = ["sh", "-c", "exit 3"]

[agents.hangs]
command = ["sh", "-c", "exec sleep 60"]
timeout_s = 1.0

[agents.garbage]
command = ["sh", "-c", "echo '{not json'; exec sleep 60"]
timeout_s = 20.0
"#,
    );
    let out = dir.path().join("out");
    let (code, stdout, stderr) = microreboot(&[
        "eval",
        "--quick",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let line = |policy: &str| {
        lines
            .iter()
            .find(|l| l["policy"] == policy)
            .unwrap_or_else(|| panic!("no line for {policy}"))
    };
    assert!(line("constrained").get("agent_failure").is_none());
    for (policy, reason) in [
        ("quits", "connection closed"),
        ("hangs", "did not finish within its timeout of 1 s"),
        ("garbage", ""),
    ] {
        let l = line(policy);
        let failure = l["agent_failure"].as_str().unwrap_or_else(|| panic!("{l}"));
        assert!(failure.contains(reason), "{policy}: {failure}");
        // The incident went on without the agent, and was judged like any other.
        assert_eq!(l["incidents"], 1, "{policy}");
        assert!(
            l["actions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["actor"] != "agent")
        );
    }
    let report = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    assert!(report.contains("### External agents"), "{report}");
    for policy in ["quits", "hangs", "garbage"] {
        assert!(
            report.contains(&format!("| {policy} | 1 | 1 |")),
            "{policy} not counted:\n{report}"
        );
    }
}

#[test]
fn bad_agent_declarations_and_unknown_policies_are_refused_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        r#""constrained", "mine""#,
        "[agents.mine]\ncommand = [\"python3\"]\nconcurrency = 0\n",
    );
    let (code, _, err) =
        microreboot(&["eval", "--config", cfg.to_str().unwrap(), "--print-config"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("eval.toml:16: [agents.mine] concurrency = 0: must be at least 1"),
        "{err}"
    );
    let cfg = config(
        dir.path(),
        r#""constrained""#,
        "[agents.mine]\ncommand = [\"python3\"]\n",
    );
    let (code, _, err) = microreboot(&[
        "eval",
        "--config",
        cfg.to_str().unwrap(),
        "--policies",
        "constrained,yours",
        "--print-config",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("unknown policy `yours`; choose from: noop,"),
        "{err}"
    );
    assert!(err.contains("(declared: mine)"), "{err}");
}
