//! `microreboot eval` and `scenario`: option errors list the valid choices, the configuration
//! round-trips, and a scenario writes what it promises.

mod common;
use common::microreboot;

#[test]
fn bad_eval_options_give_clear_errors_listing_the_choices() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["eval", "--apps", "sockShop"],
            "unknown app `sockShop`; choose from: socialNetwork, hotelReservation, mediaMicroservices",
        ),
        (
            &["eval", "--faults", "crash,flood"],
            "unknown fault `flood`; choose from: crash, latency, resource, partition, misconfig",
        ),
        (
            &["eval", "--policies", "yolo"],
            "unknown policy `yolo`; choose from: noop, auto-restart, naive-microreboot, unconstrained, constrained-structural, constrained-evidence, constrained-watchdog, constrained, oracle",
        ),
        (&["eval", "--seeds", "0"], "seeds must be at least 1"),
        (
            &["eval", "--quick", "--out", "/proc/forbidden/out"],
            "cannot create output directory /proc/forbidden/out",
        ),
        (
            &["scenario", "--fault", "crash", "--policy", "oracel"],
            "unknown policy `oracel`",
        ),
    ];
    for (args, expected) in cases {
        let (code, _, err) = microreboot(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn a_recording_that_does_not_match_the_run_stops_it_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let out = dir.path().join("out");
    let (code, _, err) = microreboot(&[
        "scenario",
        "--app",
        "hotelReservation",
        "--fault",
        "crash",
        "--policy",
        "constrained",
        "--llm-replay",
        empty.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no recorded response"), "{err}");
    let (code, _, err) = microreboot(&[
        "scenario",
        "--fault",
        "crash",
        "--policy",
        "oracle",
        "--llm-replay",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("constrained policy only"), "{err}");
}

#[test]
fn config_files_are_checked_key_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "seeds = 3\n[online]\nrun_seconds = 10\n").unwrap();
    let (code, _, err) =
        microreboot(&["eval", "--config", bad.to_str().unwrap(), "--print-config"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.toml") && err.contains("run_seconds"),
        "{err}"
    );
    let (code, _, err) = microreboot(&["eval", "--config", "/no/such/file.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("/no/such/file.toml"), "{err}");
}

#[test]
fn print_config_round_trips_and_matches_the_documented_defaults() {
    let (code, toml, _) = microreboot(&["eval", "--print-config"]);
    assert_eq!(code, 0);
    let printed = experiments::eval::EvalConfig::from_toml(&toml, "printed").unwrap();
    assert_eq!(printed, experiments::eval::EvalConfig::default());
    // The committed, commented defaults file says the same.
    let documented =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/eval.toml")).unwrap();
    assert_eq!(
        experiments::eval::EvalConfig::from_toml(&documented, "eval.toml").unwrap(),
        printed
    );
}

#[test]
fn scenario_writes_timeline_metrics_and_journal() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("short.toml");
    std::fs::write(&cfg, "[online]\nfault_start_s = 60.0\nrun_s = 180.0\n").unwrap();
    let out = dir.path().join("out");
    let (code, stdout, err) = microreboot(&[
        "scenario",
        "--app",
        "hotelReservation",
        "--fault",
        "crash",
        "--scenarios",
        "fixed",
        "--policy",
        "oracle",
        "--seed",
        "1",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("harmful: false"), "{stdout}");
    assert!(stdout.contains("restart rate"), "{stdout}");
    for f in [
        "metrics.csv",
        "journal.jsonl",
        "actions.json",
        "incidents.json",
        "record.json",
        "faults.jsonl",
        "timeline_hotelReservation_crash.png",
        "timeline_hotelReservation_crash.svg",
    ] {
        assert!(
            out.join(f).metadata().is_ok_and(|m| m.len() > 0),
            "{f} written"
        );
    }
    let journal = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    let records = kernel::journal::read_jsonl(journal.as_bytes(), "journal.jsonl").unwrap();
    assert!(
        records
            .iter()
            .any(|r| matches!(r.event, kernel::journal::Event::Commit))
    );
}

/// `--log` shows the kernel's decisions on stderr, with virtual time, and changes nothing else:
/// stdout and every written file are the same as without it.
#[test]
fn log_filter_shows_kernel_events_on_stderr_and_changes_no_result() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("short.toml");
    std::fs::write(&cfg, "[online]\nfault_start_s = 60.0\nrun_s = 180.0\n").unwrap();
    let run = |out: &str, log: Option<&str>| {
        let out = dir.path().join(out);
        let mut args = vec![
            "scenario",
            "--app",
            "hotelReservation",
            "--fault",
            "crash",
            "--scenarios",
            "fixed",
            "--policy",
            "oracle",
            "--seed",
            "3",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(log.map(|l| ["--log", l]).into_iter().flatten());
        let (code, stdout, stderr) = microreboot(&args);
        assert_eq!(code, 0, "{stderr}");
        let journal = std::fs::read(out.join("journal.jsonl")).unwrap();
        (
            stdout.replace(out.to_str().unwrap(), "OUT"),
            stderr,
            journal,
        )
    };
    let (quiet_out, quiet_err, quiet_journal) = run("quiet", None);
    let (loud_out, loud_err, loud_journal) = run("loud", Some("kernel=debug"));
    assert!(quiet_err.is_empty(), "{quiet_err}");
    assert!(
        loud_err.contains("kernel::journal: step applied"),
        "{loud_err}"
    );
    assert!(loud_err.contains("t_us="), "{loud_err}");
    assert_eq!(quiet_out, loud_out);
    assert_eq!(quiet_journal, loud_journal);
    let (code, _, err) =
        microreboot(&["--log", "kernel=[", "graph", "stats", "--generate", "meta"]);
    assert_eq!(code, 2);
    assert!(err.contains("--log"), "{err}");
}
