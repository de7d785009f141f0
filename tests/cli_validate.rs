//! `microreboot validate` end to end: verdicts, exit codes, and hostile input.

use std::path::PathBuf;
use std::process::{Command, Output};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("kernel/examples")
}

fn validate_with(plan: &std::path::Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_microreboot"))
        .arg("validate")
        .arg("--graph")
        .arg(examples().join("graph.json"))
        .arg("--scope")
        .arg(examples().join("scope.json"))
        .arg("--plan")
        .arg(plan)
        .args(extra)
        .output()
        .expect("binary runs")
}

fn validate_text(plan: &[u8]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    std::fs::write(&path, plan).unwrap();
    let out = validate_with(&path, &[]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().expect("exited"), text)
}

#[test]
fn accepted_exits_zero_rejected_exits_one() {
    let ok = validate_with(&examples().join("plan-accepted.json"), &["--json"]);
    assert_eq!(ok.status.code(), Some(0));
    let verdict: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(verdict["accepted"], true);

    let bad = validate_with(&examples().join("plan-rejected.json"), &["--json"]);
    assert_eq!(bad.status.code(), Some(1));
    let verdict: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    let rules: Vec<&str> = verdict["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"R4-restart-order"), "{rules:?}");
    let human = validate_with(&examples().join("plan-rejected.json"), &[]);
    let text = String::from_utf8(human.stdout).unwrap();
    assert!(text.starts_with("REJECTED"), "{text}");
    assert!(
        text.contains("R8-unknown-config-version at step 6 (rate)"),
        "{text}"
    );
}

#[test]
fn hostile_plans_give_clear_errors_never_panics() {
    let step = r#"{"restart":{"service":"geo"}},"#;
    let ten_thousand = format!(
        r#"{{"incident":"inc-rate-1","stages":[[{}]]}}"#,
        step.repeat(10_000).trim_end_matches(',')
    );
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let deep_in_field = format!(
        r#"{{"incident":"inc-rate-1","stages":{}{}}}"#,
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let cases: Vec<(Vec<u8>, i32, &str)> = vec![
        (br#"{"incident":"inc-rate-1","stages":[],"extra":1}"#.to_vec(), 2, "unknown field `extra`"),
        (br#"{"incident":"inc-rate-1","stages":[[{"restart":{"service":"geo","force":true}}]]}"#.to_vec(), 2, "stages[0][0].restart"),
        (br#"{"incident":"inc-rate-1","stages":[[{"delete":{"service":"geo"}}]]}"#.to_vec(), 2, "unknown variant `delete`"),
        (br#"{"incident":"inc-rate-1","stages":"all"}"#.to_vec(), 2, "field `stages`"),
        (br#"{"incident":"inc-rate-1","stages":[[{"scale":{"service":"geo","replicas":"3"}}]]}"#.to_vec(), 2, "stages[0][0].scale.replicas"),
        (br#"{"incident":"inc-rate-1","stages":[[{"rate_limit":{"service":"rate","rps":NaN}}]]}"#.to_vec(), 2, "plan.json:1:"),
        (br#"{"incident":"inc-rate-1","stages":[[{"rate_limit":{"service":"rate","rps":-5}}]]}"#.to_vec(), 2, "rate must be"),
        (br#"{"incident":"inc-rate-1","stages":[[{"scale":{"service":"geo","replicas":0}}]]}"#.to_vec(), 2, "no scale-to-zero"),
        (ten_thousand.into_bytes(), 2, "limit"),
        (deep.into_bytes(), 2, "invalid type: sequence"),
        (deep_in_field.into_bytes(), 2, "field `stages[0][0]`"),
        (b"".to_vec(), 2, "EOF"),
        (b"\xff\xfe{}".to_vec(), 2, "not UTF-8"),
        (br#"{"incident":"inc-rate-1","stages":[]}"#.to_vec(), 1, "R15-empty-plan"),
        (br#"{"incident":"inc-rate-1","stages":[[{"restart":{"service":"nope"}}]]}"#.to_vec(), 1, "R1-unknown-target"),
    ];
    for (plan, code, needle) in cases {
        let (got, text) = validate_text(&plan);
        assert_eq!(got, code, "{needle}: {text}");
        assert!(text.contains(needle), "expected `{needle}` in: {text}");
        assert!(!text.contains("panicked"), "{text}");
    }
}

#[test]
fn bad_graph_and_missing_files_exit_two_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let graph = dir.path().join("g.json");
    std::fs::write(
        &graph,
        "{\n  \"services\": [\n    {\"name\": \"a\", \"kind\": \"dbz\"}\n  ]\n}",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_microreboot"))
        .args(["validate", "--graph"])
        .arg(&graph)
        .arg("--scope")
        .arg(examples().join("scope.json"))
        .arg("--plan")
        .arg(examples().join("plan-accepted.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("g.json:3:") && err.contains("services[0].kind"),
        "{err}"
    );

    let out = validate_with(&dir.path().join("missing.json"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("missing.json")
    );
}
