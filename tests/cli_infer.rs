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

#[test]
fn offline_files_keep_every_call_by_default_and_a_window_reports_its_expiries() {
    let trace = testdata("otlp/collector_two_requests.jsonl");
    let trace = trace.to_str().unwrap();
    let (code, out, err) = microreboot(&["graph", "stats", "--trace", trace]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().next().unwrap(),
        format!(
            "{trace} (otlp): 22 records, 13 calls; the whole input -> graph 8 services, 7 edges"
        )
    );
    let (code, out, err) = microreboot(&["graph", "stats", "--trace", trace, "--window", "60s"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().next().unwrap(),
        format!(
            "{trace} (otlp): 22 records, 13 calls; 60 s window, 6 calls expired from the \
             window (--window all keeps every call) -> graph 8 services, 7 edges"
        )
    );
}

#[test]
fn trace_dash_reads_standard_input() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let bytes = std::fs::read(testdata("zipkin/zipkin_v2_shared_skew.json")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_microreboot"))
        .args(["graph", "stats", "--trace", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let out = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.lines().next().unwrap(),
        "<stdin> (zipkin): 4 records, 1 calls; the whole input -> graph 2 services, 1 edges"
    );
}

#[test]
fn dependencies_json_feeds_infer_and_graph() {
    let deps = testdata("jaeger/jaeger_dependencies_dsb.json");
    let deps = deps.to_str().unwrap();
    let (code, out, err) = microreboot(&["graph", "stats", "--trace", deps]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().next().unwrap(),
        format!(
            "{deps} (jaeger-dependencies): 4 records, 7 calls; a dependency graph (no times, \
             so no window) -> graph 5 services, 4 edges"
        )
    );
    let (code, out, err) = microreboot(&[
        "infer",
        "--trace",
        deps,
        "--symptom",
        "home-timeline-service",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("symptom: home-timeline-service"), "{out}");
}

#[test]
fn cli_names_non_traces_cycles_and_csv_columns() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("export.json");
    std::fs::write(&page, "<!DOCTYPE html>\n<html><body>502</body></html>\n").unwrap();
    let page = page.to_str().unwrap();
    let (code, _, err) = microreboot(&["infer", "--trace", page, "--all"]);
    assert_eq!(code, 2);
    assert_eq!(
        err.trim(),
        format!("error: {page}:1: looks like HTML, not a trace")
    );

    let cyc = dir.path().join("cycle.json");
    std::fs::write(
        &cyc,
        r#"{"traceID":"t1","spans":[{"spanID":"a","references":[{"refType":"CHILD_OF","spanID":"b"}],"processID":"p1"},{"spanID":"b","references":[{"refType":"CHILD_OF","spanID":"a"}],"processID":"p2"}],"processes":{"p1":{"serviceName":"x"},"p2":{"serviceName":"y"}}}"#,
    )
    .unwrap();
    let cyc = cyc.to_str().unwrap();
    let (code, out, err) = microreboot(&["graph", "stats", "--trace", cyc]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().next().unwrap(),
        format!(
            "{cyc} (jaeger): 2 records, 0 calls; 1 parent loop ignored (no edge taken from \
             them): trace t1: spans a → b → a; the whole input -> graph 0 services, 0 edges"
        )
    );

    let csv = testdata("span_csv/nezha_onlineboutique_trace_head.csv");
    let (code, out, err) = microreboot(&[
        "infer",
        "--trace",
        csv.to_str().unwrap(),
        "--format",
        "span-csv",
        "--columns",
        "trace=TraceID,span=SpanID,parent=ParentID,pod=PodName,start=StartTimeUnixNano",
        "--symptom",
        "currencyservice",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("symptom: currencyservice"), "{out}");
    let (code, _, err) = microreboot(&[
        "infer",
        "--trace",
        csv.to_str().unwrap(),
        "--columns",
        "trace=TraceID,span=SpanID",
        "--all",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("`service=COLUMN` (or `pod=COLUMN`) is missing"),
        "{err}"
    );
}
