//! Span-level ingestion ([`traces::ingest_spans`]): every span format fills in durations and,
//! where the format names it, the instance; formats without spans are refused with what they
//! lack. Real files from `traces/testdata/` (provenance in its READMEs) and one inline OTLP
//! request.

use std::path::PathBuf;
use traces::spans::Span;
use traces::{Format, IngestOptions, TraceError};

fn spans_of(rel: &str) -> Result<(Format, Vec<Span>), TraceError> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel);
    let name = traces::source_name(&path);
    let mut all = Vec::new();
    let (format, _) = traces::ingest_spans(
        traces::open(&path)?,
        &name,
        None,
        IngestOptions::default(),
        None,
        &mut |spans, _| all.extend(spans.iter().cloned()),
    )?;
    Ok((format, all))
}

fn find<'a>(spans: &'a [Span], service: &str, name: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.service == service && s.name == name)
        .unwrap_or_else(|| panic!("no span {service}/{name}"))
}

#[test]
fn jaeger_durations_and_process_hostnames() {
    let (format, spans) =
        spans_of("jaeger/dsb_socialnetwork_read_home_timeline.jaeger.json").unwrap();
    assert_eq!(format, Format::Jaeger);
    assert_eq!(spans.len(), 13);
    let redis = find(
        &spans,
        "home-timeline-service",
        "read_home_timeline_redis_find_client",
    );
    assert_eq!(redis.duration_us, Some(166));
    assert_eq!(redis.instance.as_deref(), Some("home-timeline-service"));
    // nginx runs in the `nginx-thrift` container: its hostname is the instance.
    let nginx = find(&spans, "nginx-web-server", "read_home_timeline_client");
    assert_eq!(nginx.instance.as_deref(), Some("nginx-thrift"));
}

#[test]
fn zipkin_v2_durations_and_local_endpoints() {
    let (_, spans) = spans_of("zipkin/zipkin_v2_shared_skew.json").unwrap();
    assert!(spans.iter().all(|s| s.duration_us.is_some()), "{spans:?}");
    assert!(spans.iter().all(|s| s.instance.is_some()), "{spans:?}");
}

#[test]
fn zipkin_v1_sides_take_their_own_annotations() {
    let (format, spans) = spans_of("zipkin/zipkin_v1_span_rpc.json").unwrap();
    assert_eq!(format, Format::ZipkinV1);
    let client = find(&spans, "zipkin-web", "get");
    let server = find(&spans, "zipkin-query", "get");
    // cs 274000 → cr 325000; sr 298000 → ss 302000.
    assert_eq!(client.duration_us, Some(51_000));
    assert_eq!(server.duration_us, Some(4_000));
    assert_eq!(server.start_us, 1_461_750_491_298_000);
    assert_eq!(client.instance.as_deref(), Some("127.0.0.1"));
    assert_eq!(server.instance.as_deref(), Some("172.18.0.4:9411"));
}

#[test]
fn span_csv_end_minus_start_and_pods_as_instances() {
    let (_, spans) = spans_of("span_csv/nezha_onlineboutique_trace_head.csv").unwrap();
    let root = find(&spans, "frontend", "hipstershop.Frontend/Recv.");
    // 1661273975415194516 - 1661273974730641486 ns.
    assert_eq!(root.duration_us, Some(684_553));
    assert_eq!(root.instance.as_deref(), Some("frontend-579b9bff58-t2dbm"));
}

#[test]
fn otlp_end_minus_start_and_service_instance_id() {
    let doc = r#"{"resourceSpans":[{"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"api"}},
        {"key":"service.instance.id","value":{"stringValue":"api-7"}}]},
      "scopeSpans":[{"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331",
        "name":"GET","kind":2,"startTimeUnixNano":"1000000","endTimeUnixNano":2500000}]}]}]}"#;
    let mut all = Vec::new();
    traces::ingest_spans(
        Box::new(doc.as_bytes()),
        "inline.json",
        None,
        IngestOptions::default(),
        None,
        &mut |spans, _| all.extend(spans.iter().cloned()),
    )
    .unwrap();
    assert_eq!(all[0].duration_us, Some(1500));
    assert_eq!(all[0].instance.as_deref(), Some("api-7"));
    let bad = doc.replace("2500000", "\"soon\"");
    let err = traces::ingest_spans(
        Box::new(std::io::Cursor::new(bad.into_bytes())),
        "inline.json",
        None,
        IngestOptions::default(),
        None,
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("inline.json:1")
            && err.contains("resourceSpans[0].scopeSpans[0].spans[0].endTimeUnixNano")
            && err.contains("`soon` is not a number of nanoseconds"),
        "{err}"
    );
}

#[test]
fn graphs_without_spans_are_refused_with_what_they_lack() {
    let err = spans_of("jaeger/jaeger_dependencies_dsb.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "{}/testdata/jaeger/jaeger_dependencies_dsb.json: this is Jaeger dependencies JSON (detected because",
            env!("CARGO_MANIFEST_DIR")
        )) && err.contains("no operations, span kinds, timings, call trees or instances"),
        "{err}"
    );
    let err = spans_of("alibaba/sjlgaga_2021_Callgraph.csv")
        .unwrap_err()
        .to_string();
    assert!(err.contains("this is Alibaba call-graph CSV"), "{err}");
}
