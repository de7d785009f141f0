//! `microreboot eval` output directories survive SIGKILL: the built binary is killed at 20
//! seeded points — by the clock, or right after its manifest lists the k-th file — while it
//! replaces an older, wider run, and what it leaves is checked: either no `REPORT.md`, or a
//! complete, consistent run; never a truncated `results.jsonl`, never files of two runs mixed.
//! A rerun into a killed directory says the previous run was interrupted and ends byte-identical
//! to an uninterrupted run.

// The kill points are times in a real process's life: the wall clock is what this test needs.
#![allow(clippy::disallowed_methods)]

mod common;
use common::microreboot;
use reports::run_dir::{MANIFEST, Manifest, Status, TMP_PREFIX, read_manifest};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A narrow, fast evaluation (about 2 s in a debug build).
const TINY: &str = "graphs = [\"alibaba-like\"]\n\
[online]\nfault_start_s = 20.0\nrun_s = 60.0\n\
[offline]\nincidents = 5\n\
[parallel]\nseeds = 1\ncounts = [2]\n\
[sensitivity]\nfactors = []\nonline_seeds = 1\noffline_incidents = 5\n";

fn eval_args<'a>(config: &'a str, out: &'a str, faults: &'a str) -> Vec<&'a str> {
    vec![
        "eval",
        "--quick",
        "--config",
        config,
        "--apps",
        "socialNetwork",
        "--faults",
        faults,
        "--policies",
        "noop",
        "--seeds",
        "1",
        "--jobs",
        "1",
        "--out",
        out,
    ]
}

/// SplitMix64: the kill points are drawn from a fixed seed.
struct Draw(u64);
impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Every file under `dir`, relative, `/`-separated, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(dir.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                stack.push(r);
            } else {
                out.push(r.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    for f in files(from) {
        let dest = to.join(&f);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&f), dest).unwrap();
    }
}

/// What a killed run left, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Left {
    /// The older run, untouched or partly removed (the new run had not taken the directory).
    OlderRun,
    /// The new run's manifest, still running, with this many files placed.
    Running(usize),
    /// The manifest says complete; `REPORT.md` was about to be renamed into place.
    Finishing,
    /// A complete run.
    Complete,
}

/// Checks the invariants of a directory after a kill; returns what it holds.
fn check(dir: &Path, wide: &Manifest, narrow: &Manifest, narrow_lines: usize) -> Left {
    let m = read_manifest(dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("a manifest is always present");
    let present = files(dir);
    let ctx = format!("{}: manifest {m:?}, files {present:?}", dir.display());
    // Every file is the manifest, a temporary file, or listed by the manifest: nothing of
    // another run.
    for f in &present {
        let name = f.rsplit('/').next().unwrap();
        assert!(
            f == MANIFEST || name.starts_with(TMP_PREFIX) || m.files.contains(f),
            "{f} is not the manifest's run's; {ctx}"
        );
    }
    assert_ne!(wide.config_hash, narrow.config_hash);
    let is_new = m.config_hash == narrow.config_hash;
    if !is_new {
        assert_eq!(m.config_hash, wide.config_hash, "{ctx}");
    }
    // results.jsonl, when present, is whole and of the manifest's run.
    if present.iter().any(|f| f == "results.jsonl") {
        let text = std::fs::read_to_string(dir.join("results.jsonl")).unwrap();
        assert!(text.ends_with('\n'), "results.jsonl truncated; {ctx}");
        let lines = experiments::record::read_results(&text, "results.jsonl")
            .unwrap_or_else(|e| panic!("results.jsonl does not parse: {e}; {ctx}"));
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["config_hash"], m.config_hash.as_str(), "{ctx}");
        }
        if is_new {
            assert_eq!(lines.len(), narrow_lines, "{ctx}");
        }
    }
    let latency_plot = present.iter().any(|f| f.contains("_latency."));
    if is_new {
        assert!(
            !latency_plot,
            "a plot of the wider run beside the new one; {ctx}"
        );
    }
    let report = present.iter().any(|f| f == "REPORT.md");
    if report {
        assert_eq!(
            m.status,
            Status::Complete,
            "REPORT.md beside a running run; {ctx}"
        );
        let mut listed = m.files.clone();
        listed.push(MANIFEST.to_string());
        listed.sort();
        assert_eq!(
            present, listed,
            "a complete run is exactly its files; {ctx}"
        );
    }
    match (is_new, m.status, report) {
        (false, _, _) => Left::OlderRun,
        (true, Status::Running, _) => {
            Left::Running(present.iter().filter(|f| m.files.contains(f)).count())
        }
        (true, Status::Complete, false) => Left::Finishing,
        (true, Status::Complete, true) => Left::Complete,
    }
}

#[test]
fn eval_killed_at_twenty_points_leaves_no_report_or_a_complete_run_never_a_mix() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();
    let config = config.to_str().unwrap();
    // The older, wider run (two faults: two timeline plots the new run does not write).
    let wide_dir = tmp.path().join("wide");
    let (code, _, err) = microreboot(&eval_args(
        config,
        wide_dir.to_str().unwrap(),
        "crash,latency",
    ));
    assert_eq!(code, 0, "{err}");
    let wide = read_manifest(&wide_dir).unwrap().unwrap();
    assert!(wide.files.iter().any(|f| f.contains("_latency.")));
    // The uninterrupted narrow run: the reference a rerun must reproduce.
    let ref_dir = tmp.path().join("reference");
    let t0 = Instant::now();
    let (code, _, err) = microreboot(&eval_args(config, ref_dir.to_str().unwrap(), "crash"));
    let full = t0.elapsed();
    assert_eq!(code, 0, "{err}");
    let narrow = read_manifest(&ref_dir).unwrap().unwrap();
    // The incident explorer: an index linking each online run's page, which holds the command
    // that replays the run (with the run's configuration, since TINY is not the default).
    let index = std::fs::read_to_string(ref_dir.join("explorer/index.html")).unwrap();
    assert!(
        index.contains("href=\"incidents/socialNetwork-crash-noop-s1.html\""),
        "{index}"
    );
    let page = std::fs::read_to_string(
        ref_dir.join("explorer/incidents/socialNetwork-crash-noop-s1.html"),
    )
    .unwrap();
    let replay = format!(
        "microreboot scenario --app socialNetwork --fault crash --policy noop --seed 1 --config {}",
        ref_dir.join("config.toml").display()
    );
    assert!(page.contains(&replay), "no `{replay}` in {page}");
    assert!(narrow.files.iter().any(|f| f == "explorer/index.html"));
    let reference_results = std::fs::read(ref_dir.join("results.jsonl")).unwrap();
    let narrow_lines =
        experiments::record::read_results(std::str::from_utf8(&reference_results).unwrap(), "r")
            .unwrap()
            .len();

    let mut draw = Draw(0x6d69_6372_6f72_6562);
    let mut outcomes = Vec::new();
    for i in 0..20 {
        let dir = tmp.path().join(format!("kill{i}"));
        copy_dir(&wide_dir, &dir);
        let args = eval_args(config, dir.to_str().unwrap(), "crash");
        let mut child = Command::new(env!("CARGO_BIN_EXE_microreboot"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Points 0, 4, 8…: a time anywhere in the run (and a little past it); 2, 6, 10…: within
        // the first 3 ms (start-up, removing the older run); odd points: just after the
        // manifest lists the k-th file, where the writes are, plus up to 3 ms.
        let point = if i % 2 == 0 {
            let span = if i % 4 == 0 {
                full.as_micros() as u64 * 11 / 10
            } else {
                3000
            };
            let at = Duration::from_micros(draw.below(span));
            let spawned = Instant::now();
            while spawned.elapsed() < at && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_micros(200));
            }
            format!("after {:.1} ms", at.as_secs_f64() * 1e3)
        } else {
            let k = 1 + draw.below(narrow.files.len() as u64) as usize;
            let extra = Duration::from_micros(draw.below(3000));
            let spawned = Instant::now();
            loop {
                let listed = read_manifest(&dir)
                    .ok()
                    .flatten()
                    .filter(|m| m.config_hash == narrow.config_hash)
                    .map_or(0, |m| m.files.len());
                let done = child.try_wait().unwrap().is_some();
                if listed >= k || done || spawned.elapsed() > Duration::from_secs(30) {
                    break;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            std::thread::sleep(extra);
            format!("{extra:?} after file {k} was listed")
        };
        let _ = child.kill(); // SIGKILL; an error means it had already exited
        let status = child.wait().unwrap();
        let left = check(&dir, &wide, &narrow, narrow_lines);
        // A complete run either exited by itself, successfully, or was killed after its last
        // rename (between placing REPORT.md and exiting): the directory is what is judged.
        if left == Left::Complete && status.code().is_some() {
            assert!(status.success(), "{status}");
        }
        outcomes.push((point, left));
        // Every fourth directory is finished by a rerun, which reports an interrupted run and
        // ends exactly like the uninterrupted one.
        if i % 4 == 1 || i % 4 == 2 {
            let (code, _, err) = microreboot(&args);
            assert_eq!(code, 0, "{err}");
            if matches!(left, Left::Running(_) | Left::Finishing) {
                assert!(
                    err.contains("was interrupted") || err.contains("is incomplete"),
                    "{left:?}: {err}"
                );
            }
            let mut expected = files(&ref_dir);
            expected.sort();
            assert_eq!(files(&dir), expected, "rerun after {left:?}");
            assert_eq!(
                std::fs::read(dir.join("results.jsonl")).unwrap(),
                reference_results
            );
            assert_eq!(check(&dir, &wide, &narrow, narrow_lines), Left::Complete);
        }
    }
    for (point, left) in &outcomes {
        eprintln!("killed {point}: {left:?}");
    }
    let writing = outcomes
        .iter()
        .filter(|(_, l)| matches!(l, Left::Running(n) if *n > 0))
        .count();
    eprintln!(
        "{} kill points, {writing} during the writes, in {:.1} s",
        outcomes.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        writing >= 3,
        "too few kill points landed among the writes: {outcomes:?}"
    );
}

#[test]
fn eval_refuses_a_directory_it_did_not_write_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("REPORT.md"), "an older tool's report").unwrap();
    let out_s = out.to_str().unwrap();
    let (code, _, err) = microreboot(&["eval", "--quick", "--seeds", "0", "--out", out_s]);
    assert_eq!(code, 2);
    assert!(
        err.contains("seeds must be at least 1"),
        "config errors come first: {err}"
    );
    let config = tmp.path().join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();
    let mut args = eval_args(config.to_str().unwrap(), out_s, "crash");
    let (code, _, err) = microreboot(&args);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is not empty (REPORT.md)") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("REPORT.md")).unwrap(),
        "an older tool's report",
        "untouched"
    );
    args.push("--force");
    let (code, _, err) = microreboot(&args);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("--force: removed the 1 entries"), "{err}");
    let m = read_manifest(&out).unwrap().unwrap();
    assert_eq!(m.status, Status::Complete);
    assert!(m.files.iter().any(|f| f == "REPORT.md"));
}
