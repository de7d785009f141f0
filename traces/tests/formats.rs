//! The formats added for issue 13 on real committed files (see the READMEs beside them) and on
//! truncated copies, and the honest-graph rules: parent loops, shared spans, non-traces.

use kernel::DependencyGraph;
use std::io::{BufReader, Cursor};
use std::path::PathBuf;
use traces::{
    Format, IngestOptions, IngestSummary, SpanColumns, TraceError, WindowedGraph, ingest_with,
};

fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel)
}

fn read_bytes(
    bytes: &[u8],
    name: &str,
    format: Option<Format>,
    columns: Option<&SpanColumns>,
) -> Result<(Format, IngestSummary, DependencyGraph), TraceError> {
    let mut w = WindowedGraph::new(None);
    let input = Box::new(BufReader::new(Cursor::new(bytes.to_vec())));
    let (f, s) = ingest_with(
        input,
        name,
        format,
        IngestOptions::default(),
        columns,
        &mut |c, n| w.ingest_count(c, n),
    )?;
    Ok((f, s, w.into_graph()))
}

fn load(rel: &str) -> (Format, IngestSummary, DependencyGraph) {
    let bytes = std::fs::read(testdata(rel)).unwrap();
    read_bytes(&bytes, rel, None, None).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The file cut in the middle: an error naming the file, the line and column, and the
/// detected format with its reason.
fn truncated(rel: &str, keep: usize) -> String {
    let bytes = std::fs::read(testdata(rel)).unwrap();
    let cut = &bytes[..keep.min(bytes.len() / 2)];
    read_bytes(cut, "cut", None, None).unwrap_err().to_string()
}

fn edges(graph: &DependencyGraph) -> Vec<String> {
    let mut out: Vec<String> = graph
        .edges()
        .map(|(a, b, d)| {
            format!(
                "{}>{}:{}x{}",
                graph.service(a).name,
                graph.service(b).name,
                d.kind.as_str(),
                d.weight
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn jaeger_bare_trace_object_from_jaegers_own_fixtures() {
    let (format, summary, graph) = load("jaeger/jaeger_ui_01_bare_trace.json");
    assert_eq!(format, Format::Jaeger);
    assert_eq!(summary.to_string(), "5 records, 2 calls");
    // Span 4's first CHILD_OF points into another trace; its reference in this trace wins.
    assert_eq!(edges(&graph), ["service-x>service-y:rpcx2"]);
    let err = truncated("jaeger/jaeger_ui_01_bare_trace.json", 1000);
    assert!(err.starts_with("cut:"), "{err}");
    assert!(err.contains("field `spans[1]"), "{err}");
    assert!(
        err.ends_with(
            "(detected as Jaeger JSON because the document has `traceID`, `spans` and \
             `processes` (one Jaeger trace))"
        ),
        "{err}"
    );
    // A bare trace's error paths have no `data[…]`.
    let text = r#"{"traceID":"t","spans":[{"spanID":"a","processID":"p9"}],"processes":{}}"#;
    let err = read_bytes(text.as_bytes(), "in", None, None).unwrap_err();
    assert_eq!(err.field, "spans[0].processID");
}

#[test]
fn jaeger_dependencies_are_a_weighted_graph_wrapped_or_bare() {
    let (format, summary, graph) = load("jaeger/jaeger_dependencies_dsb.json");
    assert_eq!(format, Format::JaegerDependencies);
    assert!(format.is_graph_only());
    assert!(format.lacks().unwrap().contains("not spans"));
    assert_eq!(summary.to_string(), "4 records, 7 calls");
    assert_eq!(
        edges(&graph),
        [
            "home-timeline-service>home-timeline-redis:rpcx2",
            "home-timeline-service>post-storage-service:rpcx2",
            "nginx-web-server>home-timeline-service:rpcx2",
            "post-storage-service>post-storage-memcached:rpcx1",
        ]
    );
    let bare =
        r#"[{"parent":"a","child":"b","callCount":40},{"parent":"a","child":"a","callCount":1}]"#;
    let (format, summary, graph) = read_bytes(bare.as_bytes(), "in", None, None).unwrap();
    assert_eq!(format, Format::JaegerDependencies);
    assert_eq!(
        summary.to_string(),
        "2 records, 40 calls; 1 dropped (self call)"
    );
    assert_eq!(edges(&graph), ["a>b:rpcx40"]);
    let bad = r#"{"data":[{"parent":"a","child":"b","callCount":"many"}]}"#;
    let err = read_bytes(bad.as_bytes(), "in", None, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "in:1: field `data[0].callCount`: `\"many\"` is not a non-negative whole number of \
         calls (detected as Jaeger dependencies JSON because the document holds `parent`, \
         `child` and `callCount` links)"
    );
    let err = truncated("jaeger/jaeger_dependencies_dsb.json", 200);
    assert!(err.starts_with("cut:"), "{err}");
    assert!(err.contains("EOF while parsing"), "{err}");
}

#[test]
fn tempo_batches_with_base64_ids_and_legacy_scope_names() {
    // Tempo's documented answer (one span): the base64 ids come out as the hex ids pushed.
    let (format, summary, _) = load("otlp/tempo_docs_push_spans_response.json");
    assert_eq!(format, Format::Otlp);
    assert_eq!(summary.records, 1);
    // The minimal trace as Tempo returns it gives the same graph as the OTLP original.
    let (_, original, expected) = load("formats/otlp_minimal.json");
    let (format, summary, graph) = load("otlp/tempo_batches_minimal.json");
    assert_eq!(format, Format::Otlp);
    assert_eq!(summary, original);
    assert_eq!(edges(&graph), edges(&expected));
    let err = truncated("otlp/tempo_batches_minimal.json", 900);
    assert!(err.starts_with("cut:"), "{err}");
    assert!(
        err.contains("field `batches[0].instrumentationLibrarySpans"),
        "{err}"
    );
    assert!(
        err.ends_with(
            "(detected as OTLP JSON because the document starts with `batches` (Grafana \
             Tempo's OTLP JSON))"
        ),
        "{err}"
    );
}

#[test]
fn otlp_json_lines_of_requests_keep_every_call_in_an_unbounded_graph() {
    let (format, summary, graph) = load("otlp/collector_two_requests.jsonl");
    assert_eq!(format, Format::Otlp);
    assert_eq!(summary.to_string(), "22 records, 13 calls");
    assert_eq!(graph.edge_count(), 7);
    let bytes = std::fs::read(testdata("otlp/collector_two_requests.jsonl")).unwrap();
    let first_line = bytes.iter().position(|&b| b == b'\n').unwrap();
    let err = read_bytes(&bytes[..first_line + 300], "cut", None, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cut:2:"),
        "the second request is cut: {err}"
    );
}

#[test]
fn zipkin_v1_from_zipkins_own_benchmark_span() {
    let (format, summary, graph) = load("zipkin/zipkin_v1_span_rpc.json");
    assert_eq!(format, Format::ZipkinV1);
    // One v1 span with both sides: zipkin-web's client half and zipkin-query's shared server
    // half; the span's own parent is not in the file.
    assert_eq!(
        summary.to_string(),
        "2 records, 1 calls; 1 dropped (orphan span)"
    );
    assert_eq!(edges(&graph), ["zipkin-web>zipkin-query:rpcx1"]);
    let err = truncated("zipkin/zipkin_v1_span_rpc.json", 700);
    assert!(err.starts_with("cut:33:3: field `annotations[2]"), "{err}");
    assert!(
        err.ends_with("(detected as Zipkin v1 JSON because the span has `annotations`)"),
        "{err}"
    );
    // A client-only v1 span names its uninstrumented server through `sa`.
    let text = r#"[{"traceId":"1","id":"2","name":"query","annotations":[{"timestamp":5,"value":"cs","endpoint":{"serviceName":"api"}}],"binaryAnnotations":[{"key":"sa","value":true,"endpoint":{"serviceName":"mysql"}}]}]"#;
    let (format, _, graph) = read_bytes(text.as_bytes(), "in", None, None).unwrap();
    assert_eq!(format, Format::ZipkinV1);
    assert_eq!(edges(&graph), ["api>mysql:rpcx1"]);
    let text =
        r#"[{"traceId":"1","id":"2","annotations":[{"value":"cs"}],"binaryAnnotations":[]}]"#;
    let err = read_bytes(text.as_bytes(), "in", None, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "in:1: field `[0].annotations`: no annotation or binary annotation names an \
         `endpoint.serviceName` (detected as Zipkin v1 JSON because the first span has \
         `binaryAnnotations`)"
    );
}

#[test]
fn zipkin_shared_server_spans_merge_and_are_never_orphans() {
    // Zipkin's own skew fixture: servicea's client and serviceb's shared server span share
    // an id and merge into one call.
    let (_, summary, graph) = load("zipkin/zipkin_v2_shared_skew.json");
    assert_eq!(summary.to_string(), "4 records, 1 calls");
    assert_eq!(edges(&graph), ["servicea>serviceb:rpcx1"]);
    // Without its client span, a shared server span is where the request entered: not an
    // orphan, nothing is missing.
    let text = r#"[{"traceId":"1","id":"2","kind":"SERVER","shared":true,"localEndpoint":{"serviceName":"serviceb"}},{"traceId":"1","parentId":"2","id":"3","kind":"CLIENT","localEndpoint":{"serviceName":"serviceb"},"remoteEndpoint":{"serviceName":"db"}}]"#;
    let (_, summary, graph) = read_bytes(text.as_bytes(), "in", None, None).unwrap();
    assert_eq!(summary.to_string(), "2 records, 1 calls");
    assert_eq!(edges(&graph), ["serviceb>db:rpcx1"]);
    let b = graph.id("serviceb").unwrap();
    assert_eq!(graph.service(b).kind, kernel::ServiceKind::Frontend);
}

#[test]
fn reference_cycles_and_self_parents_are_reported_and_invent_no_edge() {
    let text = r#"{"traceID":"t1","spans":[
        {"spanID":"a","references":[{"refType":"CHILD_OF","spanID":"b"}],"processID":"p1"},
        {"spanID":"b","references":[{"refType":"CHILD_OF","spanID":"a"}],"processID":"p2"},
        {"spanID":"c","references":[{"refType":"CHILD_OF","spanID":"c"}],"processID":"p1"},
        {"spanID":"d","references":[{"refType":"CHILD_OF","spanID":"c"}],"processID":"p2"}],
        "processes":{"p1":{"serviceName":"x"},"p2":{"serviceName":"y"}}}"#;
    let (_, summary, graph) = read_bytes(text.as_bytes(), "in", None, None).unwrap();
    assert_eq!(
        summary.to_string(),
        "4 records, 1 calls; 2 parent loops ignored (no edge taken from them): trace t1: \
         spans a → b → a; trace t1: span c is its own parent"
    );
    assert_eq!(summary.cycles_total, 2);
    assert_eq!(summary.cycles[0].span_ids, ["a", "b"]);
    // Only d's claim (child of c) is an edge; a ⇄ b and c → c give none.
    assert_eq!(edges(&graph), ["x>y:rpcx1"]);
}

#[test]
fn span_csv_from_the_nezha_dataset_with_pod_names() {
    let (format, summary, graph) = load("span_csv/nezha_onlineboutique_trace_head.csv");
    assert_eq!(format, Format::SpanCsv);
    assert_eq!(summary.records, 110);
    assert_eq!(summary.skipped_total(), 0);
    let names: Vec<&str> = graph.services().map(|(_, s)| s.name.as_str()).collect();
    assert!(names.contains(&"frontend"), "{names:?}");
    assert!(names.contains(&"currencyservice"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.contains("579b9bff58")),
        "pod suffixes stripped: {names:?}"
    );
    let f = graph.id("frontend").unwrap();
    let c = graph.id("currencyservice").unwrap();
    assert!(graph.edge(f, c).is_some());
    // The same file with an explicit mapping (the CLI's --columns).
    let columns = SpanColumns::parse(
        "trace=TraceID,span=SpanID,parent=ParentID,pod=PodName,start=StartTimeUnixNano,\
         end=EndTimeUnixNano,operation=OperationName",
    )
    .unwrap();
    let bytes = std::fs::read(testdata("span_csv/nezha_onlineboutique_trace_head.csv")).unwrap();
    let (_, again, graph2) =
        read_bytes(&bytes, "in", Some(Format::SpanCsv), Some(&columns)).unwrap();
    assert_eq!(again, summary);
    assert_eq!(edges(&graph2), edges(&graph));
    // Truncated in the middle of a row: that row is short and named by line and column.
    let cut = &bytes[..bytes.len() / 2];
    let err = read_bytes(cut, "cut", None, None).unwrap_err().to_string();
    assert!(err.starts_with("cut:"), "{err}");
    assert!(err.contains("field `"), "{err}");
    assert!(
        err.ends_with(
            "(detected as span CSV because the header has trace, span, parent, service (or \
             pod) and start columns)"
        ),
        "{err}"
    );
    // A mapping naming a column the file lacks.
    let wrong =
        SpanColumns::parse("trace=T,span=SpanID,parent=ParentID,service=Svc,start=S").unwrap();
    let err = read_bytes(&bytes, "in", Some(Format::SpanCsv), Some(&wrong)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("in:1: field `T`: the trace column `T` is not in the header"),
        "{err}"
    );
}

#[test]
fn html_and_binary_files_are_named_as_not_traces() {
    let html = b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head></html>\n";
    let err = read_bytes(html, "export.json", None, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "export.json:1: looks like HTML, not a trace"
    );
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0";
    let err = read_bytes(png, "trace.json", None, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "trace.json:1: looks like binary data, not a trace"
    );
}
