//! `microreboot bench gate` (needs valgrind): a baseline it has just written passes, and the
//! same counts against a doctored baseline — every count lowered by a tenth, as if the code had
//! become 11 % slower — fail, naming the workload and the change.

mod common;
use common::microreboot;

#[test]
fn the_instruction_gate_passes_its_own_counts_and_fails_a_doctored_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("instructions.json");
    let b = baseline.to_str().unwrap();
    let gate = |extra: &[&str]| {
        let mut args = vec!["bench", "gate", "--only", "validate", "--baseline", b];
        args.extend(extra);
        microreboot(&args)
    };
    let (code, out, err) = gate(&["--update"]);
    assert_eq!(code, 0, "{out}{err}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    let n = written["instructions"]["validate"].as_u64().unwrap();
    assert!(
        n > 1_000_000,
        "2,000 validations count millions of instructions: {n}"
    );
    assert!(
        written["valgrind"]
            .as_str()
            .unwrap()
            .starts_with("valgrind")
    );

    let (code, out, err) = gate(&[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("within +5% of"), "{out}");

    let mut doctored = written.clone();
    doctored["instructions"]["validate"] = (n * 9 / 10).into();
    std::fs::write(&baseline, doctored.to_string()).unwrap();
    let (code, out, err) = gate(&[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("**over the threshold**"), "{out}");
    assert!(err.contains("validate +11."), "{err}");
    // A threshold above the change lets it through.
    let (code, out, _) = gate(&["--threshold-pct", "12"]);
    assert_eq!(code, 0, "{out}");

    // A baseline without the workload is an error that says what to do.
    std::fs::write(&baseline, r#"{"valgrind": "v", "instructions": {}}"#).unwrap();
    let (code, _, err) = gate(&[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no count for workload `validate` (rerun with --update)"),
        "{err}"
    );
}
