//! `microreboot compare` end to end, on the committed fixtures of tests/data/compare: an
//! injected regression fails with the cell and seeds named, identical runs pass, and runs of
//! different configurations are refused unless the differing keys are allowed.

mod common;

use common::microreboot;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

fn data(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/compare")
        .join(rel)
        .display()
        .to_string()
}

#[test]
fn an_injected_regression_fails_naming_its_cell_and_seeds() {
    let (code, out, err) = microreboot(&["compare", &data("baseline"), &data("regressed")]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("**1 regressed cell:** `online socialNetwork crash constrained`"),
        "{out}"
    );
    assert!(
        out.contains("**harm regressed**, **recovery regressed**, **TTR regressed**"),
        "{out}"
    );
    assert!(
        out.contains("## Changed verdicts, paired by seed (8)"),
        "{out}"
    );
    for seed in 1..=8 {
        assert!(
            out.contains(&format!(
                "`microreboot scenario --app socialNetwork --fault crash --policy constrained --seed {seed}`"
            )),
            "seed {seed}: {out}"
        );
    }
    assert!(!out.contains("--seed 9`"), "{out}");
    assert!(
        err.contains("online socialNetwork crash constrained"),
        "{err}"
    );
    // A threshold the regression does not clear (harm +80 pp, interval from +10.3 pp; recovery
    // the same; TTR median from 44 s to never) lets it pass.
    let (code, out, _) = microreboot(&[
        "compare",
        &data("baseline"),
        &data("regressed"),
        "--harm-threshold-pp",
        "20",
        "--recovery-threshold-pp",
        "20",
        "--ttr-threshold-s",
        "inf",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("No significant regression"), "{out}");
}

#[test]
fn identical_runs_pass_whether_given_as_directory_or_file() {
    let md = tempfile::NamedTempFile::new().unwrap();
    let (code, out, err) = microreboot(&[
        "compare",
        &data("baseline"),
        &data("baseline/results.jsonl.gz"),
        "--markdown",
        &md.path().display().to_string(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("**No significant regression.**"), "{out}");
    assert!(out.contains("configurations: identical"), "{out}");
    assert!(out.contains("None: every incident in both runs has the same verdicts."));
    assert!(
        out.contains("| online socialNetwork latency constrained | 10 |"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(md.path()).unwrap().trim(),
        out.trim()
    );
}

/// A copy of the baseline as a run of another configuration: `llm.verification_catch` set to
/// `catch` in its config.toml, every line's config hash replaced, and the constrained crash run
/// of seed `harmful_seed` (if any) marked harmful.
fn variant(dir: &Path, catch: f64, harmful_seed: Option<u64>) {
    let mut config: toml::Table = std::fs::read_to_string(data("baseline/config.toml"))
        .unwrap()
        .parse()
        .unwrap();
    config["llm"]
        .as_table_mut()
        .unwrap()
        .insert("verification_catch".into(), catch.into());
    let mut gz = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(data("baseline/results.jsonl.gz")).unwrap())
        .read_to_string(&mut gz)
        .unwrap();
    let mut lines = String::new();
    for line in gz.lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["config_hash"] = "00000000000000ff".into();
        if v["experiment"] == "online"
            && v["policy"] == "constrained"
            && v["fault"] == "crash"
            && harmful_seed.is_some_and(|s| v["seed"] == s)
        {
            v["harmful"] = true.into();
        }
        lines.push_str(&format!("{v}\n"));
    }
    std::fs::write(dir.join("config.toml"), config.to_string()).unwrap();
    std::fs::File::create(dir.join("results.jsonl"))
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
}

#[test]
fn different_configurations_are_refused_unless_the_keys_are_allowed() {
    let dir = tempfile::tempdir().unwrap();
    variant(dir.path(), 0.5, Some(3));
    let cur = dir.path().display().to_string();
    let (code, _, err) = microreboot(&["compare", &data("baseline"), &cur]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("llm.verification_catch: 0.3 → 0.5"),
        "the refusal names the key and both values: {err}"
    );
    for allow in ["llm.verification_catch", "llm"] {
        let (code, out, err) =
            microreboot(&["compare", &data("baseline"), &cur, "--allow-differ", allow]);
        assert_eq!(code, 0, "{allow}: {out}{err}");
        assert!(
            out.contains("differ in allowed keys: `llm.verification_catch` 0.3 → 0.5"),
            "{out}"
        );
        // The replay command of a run with a non-default LLM carries its configuration.
        let replay = format!(
            "`microreboot scenario --app socialNetwork --fault crash --policy constrained --seed 3 \
             --config {}`",
            dir.path().join("config.toml").display()
        );
        assert!(out.contains(&replay), "{replay}: {out}");
    }
    // Without config.toml only the hashes are known: refused unless any key may differ.
    std::fs::remove_file(dir.path().join("config.toml")).unwrap();
    let (code, _, err) =
        microreboot(&["compare", &data("baseline"), &cur, "--allow-differ", "llm"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("has no config.toml to say which keys"),
        "{err}"
    );
    let (code, out, _) = microreboot(&["compare", &data("baseline"), &cur, "--allow-differ", "*"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn bad_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().display().to_string();
    let (code, _, err) = microreboot(&["compare", &empty, &data("baseline")]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no results.jsonl or results.jsonl.gz"),
        "{err}"
    );
    let bad = dir.path().join("results.jsonl");
    std::fs::write(&bad, "{\"experiment\": \"online\"}\n").unwrap();
    let (code, _, err) = microreboot(&["compare", &bad.display().to_string(), &data("baseline")]);
    assert_eq!(code, 2);
    assert!(err.contains("results.jsonl:1:"), "{err}");
    // A report directory whose manifest names another run than its results is caught.
    std::fs::remove_file(&bad).unwrap();
    std::fs::copy(
        data("baseline/results.jsonl.gz"),
        dir.path().join("results.jsonl.gz"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".microreboot-run.json"),
        r#"{"format": 1, "command": "eval", "status": "complete", "commit": "c",
            "config_hash": "0000000000000000", "started": "t", "updated": "t", "stage": "s",
            "files": []}"#,
    )
    .unwrap();
    let (code, _, err) = microreboot(&["compare", &empty, &data("baseline")]);
    assert_eq!(code, 2);
    assert!(err.contains("the directory mixes two runs"), "{err}");
    let (code, _, err) = microreboot(&[
        "compare",
        &data("baseline"),
        &data("baseline"),
        "--alpha",
        "2",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--alpha 2"), "{err}");
}
