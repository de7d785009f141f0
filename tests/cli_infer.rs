//! `microreboot infer` and `microreboot graph` end to end.

mod common;
use common::microreboot;

use std::path::PathBuf;

fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("traces/testdata")
        .join(rel)
}

#[test]
fn infer_from_the_deathstarbench_jaeger_export() {
    let trace = testdata("jaeger/dsb_socialnetwork_read_home_timeline.jaeger.json");
    let trace = trace.to_str().unwrap();
    let (code, out, err) = microreboot(&[
        "infer",
        "--trace",
        trace,
        "--symptom",
        "home-timeline-service",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("layer 0: [home-timeline-redis] [post-storage-memcached]"),
        "{out}"
    );
    assert!(out.contains("layer 2: [home-timeline-service]"), "{out}");

    let (code, out, _) = microreboot(&[
        "infer",
        "--trace",
        trace,
        "--symptom",
        "home-timeline-service",
        "--json",
    ]);
    assert_eq!(code, 0);
    let scope: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(scope["groups"].as_array().unwrap().len(), 4);
    assert_eq!(scope["is_truncated"], false);

    let (code, out, _) = microreboot(&["infer", "--trace", trace, "--all", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 5, "one scope per service");
}

#[test]
fn infer_errors_are_clear() {
    let trace = testdata("jaeger/dsb_socialnetwork_read_home_timeline.jaeger.json");
    let trace = trace.to_str().unwrap();
    let (code, _, err) = microreboot(&["infer", "--trace", trace, "--symptom", "home-timeline"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("did you mean one of: home-timeline-service, home-timeline-redis"),
        "{err}"
    );
    let (code, _, err) = microreboot(&[
        "infer",
        "--trace",
        trace,
        "--symptom",
        "x",
        "--window",
        "soon",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("not a window length"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "traceid,timestamp,rpcid,um,rpctype,dm,interface,rt\nt,1,0.1,a,rpc,b,i,None\n",
    )
    .unwrap();
    let (code, _, err) =
        microreboot(&["infer", "--trace", bad.to_str().unwrap(), "--symptom", "a"]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.csv:2: field `rt`"), "{err}");
    // JSON that is not a trace is an error, not an empty graph.
    let not_a_trace = dir.path().join("plan.json");
    std::fs::write(&not_a_trace, r#"{"foo": 1}"#).unwrap();
    let (code, _, err) = microreboot(&["infer", "--trace", not_a_trace.to_str().unwrap(), "--all"]);
    assert_eq!(code, 2);
    assert!(err.contains("no trace records found"), "{err}");
    let (code, out, _) = microreboot(&[
        "infer",
        "--trace",
        bad.to_str().unwrap(),
        "--symptom",
        "a",
        "--lenient",
        "--window",
        "all",
    ]);
    assert_eq!(
        code, 2,
        "the only row was skipped, so `a` is unknown: {out}"
    );
    assert!(out.contains("1 malformed skipped"), "{out}");
}

#[test]
fn graph_stats_and_export_round_trip() {
    let (code, out, err) = microreboot(&["graph", "stats", "--generate", "meta", "--seed", "3"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("services        392"), "{out}");
    assert!(out.contains("blast radius"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("meta.json");
    let (code, _, err) = microreboot(&[
        "graph",
        "export",
        "--generate",
        "meta",
        "--seed",
        "3",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, again, _) = microreboot(&["graph", "stats", "--graph", file.to_str().unwrap()]);
    assert_eq!(code, 0);
    let tail = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(
        tail(&out),
        tail(&again),
        "exported graph has the same shape"
    );
}
