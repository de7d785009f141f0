//! `eval --shard I/N` and `eval merge`: for N = 1, 2 and 3, the merged report directory is
//! byte-identical to a single-machine run (results, timelines, tables, plots, explorer and
//! `REPORT.md` but for its wall-clock line), and an interrupted sweep reruns only the shards
//! that are missing.

mod common;
use common::microreboot;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A narrow evaluation of nine jobs (four online cells, a graph shape, three offline batches,
/// one concurrent-recovery pair), a few seconds in a test build.
const SMALL: &str = "seeds = 2\napps = [\"socialNetwork\"]\nfaults = [\"crash\", \"latency\"]\n\
policies = [\"noop\", \"constrained\"]\ngraphs = [\"meta-like\"]\n\
[online]\nfault_start_s = 20.0\nrun_s = 60.0\n\
[offline]\nincidents = 150\n\
[parallel]\nseeds = 1\ncounts = [2]\n\
[sensitivity]\nfactors = [2.0]\nonline_seeds = 1\noffline_incidents = 5\n";

/// Every file under `dir` but the manifest and the wall-clock timings, by relative path, with
/// REPORT.md's wall-clock line removed.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if path.is_dir() {
                walk(root, &path, out);
            } else if !matches!(
                rel.to_str().unwrap(),
                ".microreboot-run.json" | "timings.json"
            ) {
                let mut bytes = std::fs::read(&path).unwrap();
                if rel == Path::new("REPORT.md") {
                    let text = String::from_utf8(bytes).unwrap();
                    bytes = text
                        .lines()
                        .filter(|l| !l.starts_with("- Wall clock:"))
                        .collect::<Vec<_>>()
                        .join("\n")
                        .into_bytes();
                }
                out.insert(rel, bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn eval(config: &str, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "eval",
        "--quick",
        "--config",
        config,
        "--jobs",
        "2",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let (code, stdout, err) = microreboot(&args);
    assert_eq!(code, 0, "{args:?}: {stdout}{err}");
    err
}

fn merge(shards: &[PathBuf], out: &Path) -> (i32, String) {
    let mut args = vec![
        "eval",
        "merge",
        "--no-timings",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(shards.iter().map(|s| s.to_str().unwrap()));
    let (code, stdout, err) = microreboot(&args);
    (code, format!("{stdout}{err}"))
}

#[test]
fn merged_shards_are_byte_identical_to_one_run_and_a_rerun_fills_only_the_gaps() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("small.toml");
    std::fs::write(&config, SMALL).unwrap();
    let config = config.to_str().unwrap();
    // Every run writes into `report` and is moved away after: the explorer's replay commands
    // name the output directory's config.toml.
    let report = tmp.path().join("report");
    eval(config, &report, &[]);
    let expected = contents(&report);
    std::fs::rename(&report, tmp.path().join("whole")).unwrap();
    assert!(expected.contains_key(Path::new("results.jsonl")));
    assert!(expected.contains_key(Path::new("explorer/index.html")));
    assert!(expected.contains_key(Path::new("REPORT.md")));
    for n in 1..=3 {
        let shards: Vec<PathBuf> = (0..n)
            .map(|i| tmp.path().join(format!("n{n}/shard-{i}")))
            .collect();
        // Any order: the merge restores the job order.
        for (i, dir) in shards.iter().enumerate().rev() {
            eval(config, dir, &["--shard", &format!("{i}/{n}")]);
        }
        let (code, out) = merge(&shards, &report);
        assert_eq!(code, 0, "{out}");
        let got = contents(&report);
        std::fs::rename(&report, tmp.path().join(format!("n{n}/merged"))).unwrap();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "n = {n}: the same files"
        );
        for (rel, bytes) in &expected {
            assert!(got[rel] == *bytes, "n = {n}: {} differs", rel.display());
        }
    }
    // An interrupted sweep of three: shard 1's machine was lost, shard 2 was killed mid-run
    // (its manifest still says `running`).
    let shards: Vec<PathBuf> = (0..3)
        .map(|i| tmp.path().join(format!("n3/shard-{i}")))
        .collect();
    std::fs::remove_dir_all(&shards[1]).unwrap();
    let manifest = shards[2].join(".microreboot-run.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("\"complete\"", "\"running\"")).unwrap();
    let (code, out) = merge(&[shards[0].clone(), shards[2].clone()], &report);
    assert_eq!(code, 2);
    assert!(out.contains("shard-2: the shard did not finish"), "{out}");
    let (code, out) = merge(&[shards[0].clone()], &report);
    assert_eq!(code, 2);
    assert!(out.contains("missing shards: 1/3, 2/3"), "{out}");
    // Rerunning the whole sweep runs only the two missing shards.
    let mut skipped = 0;
    for (i, dir) in shards.iter().enumerate() {
        let err = eval(config, dir, &["--shard", &format!("{i}/3")]);
        skipped += usize::from(err.contains("already complete"));
        assert_eq!(err.contains("already complete"), i == 0, "shard {i}: {err}");
    }
    assert_eq!(skipped, 1);
    let (code, out) = merge(&shards, &report);
    assert_eq!(code, 0, "{out}");
    assert!(contents(&report) == expected, "after the rerun");
}

#[test]
fn shards_of_different_splits_or_configurations_are_refused() {
    let (code, _, err) = microreboot(&["eval", "--quick", "--shard", "3/3"]);
    assert_eq!(code, 2);
    assert!(err.contains("expected I/N with 0 ≤ I < N"), "{err}");
    let tmp = tempfile::tempdir().unwrap();
    let (code, out) = merge(&[tmp.path().to_path_buf()], &tmp.path().join("m"));
    assert_eq!(code, 2);
    assert!(out.contains("not a shard directory"), "{out}");
}
