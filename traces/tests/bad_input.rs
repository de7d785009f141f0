//! Hostile and broken inputs: clear errors or counted skips, never a panic.

use proptest::prelude::*;
use std::io::{BufReader, Cursor};
use traces::{Format, IngestOptions, IngestSummary, TraceError, ingest, ingest_path};

fn run(
    bytes: &[u8],
    format: Option<Format>,
    lenient: bool,
) -> Result<(Format, IngestSummary), TraceError> {
    let input = Box::new(BufReader::new(Cursor::new(bytes.to_vec())));
    ingest(
        input,
        "input",
        format,
        IngestOptions { lenient },
        &mut |_| {},
    )
}

const HEADER: &str = "traceid,timestamp,rpcid,um,rpctype,dm,interface,rt\n";

#[test]
fn truncated_gzip_is_a_clear_error() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/alibaba/casper_2021_sample_small.csv.gz");
    let bytes = std::fs::read(path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.csv.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    for lenient in [false, true] {
        let err = ingest_path(&cut, None, IngestOptions { lenient }, &mut |_| {}).unwrap_err();
        assert!(err.source_name.ends_with("cut.csv.gz"), "{err}");
        assert!(err.message.contains("truncated or corrupt"), "{err}");
    }
}

#[test]
fn shifted_columns_are_reported_with_line_and_skipped_leniently() {
    let text =
        format!("{HEADER}t,1,0.1,a,rpc,b,i,3\nt,2,0.2,a,rpc,EXTRA,b,i,3\nt,3,0.3,a,rpc,c,i,3\n");
    let err = run(text.as_bytes(), None, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "input:3: expected 8 fields as in the header, found 9 (shifted columns?) \
         (detected as Alibaba call-graph CSV because the header has `um` and `dm` columns)"
    );
    let (_, summary) = run(text.as_bytes(), None, true).unwrap();
    assert_eq!(summary.calls, 2);
    assert_eq!(summary.skipped["wrong field count"], 1);
}

#[test]
fn empty_inputs_are_clear_errors_in_every_format() {
    for format in [
        None,
        Some(Format::Alibaba),
        Some(Format::Jaeger),
        Some(Format::Zipkin),
        Some(Format::Otlp),
    ] {
        for bytes in [&b""[..], &b"   \n\n"[..]] {
            let err = run(bytes, format, false).unwrap_err();
            assert!(
                err.message.contains("empty") || err.message.contains("no `traceid` column"),
                "{format:?}: {err}"
            );
        }
    }
}

#[test]
fn non_utf8_is_named() {
    let mut bytes = HEADER.as_bytes().to_vec();
    bytes.extend_from_slice(b"t,1,0.1,\xff\xfe,rpc,b,i,3\n");
    let err = run(&bytes, None, false).unwrap_err();
    assert_eq!(err.field, "um");
    assert!(err.message.contains("UTF-8"), "{err}");
    let (_, summary) = run(&bytes, None, true).unwrap();
    assert_eq!(summary.skipped["not UTF-8"], 1);
    let err = run(b"{\"data\": [\xff]}", Some(Format::Jaeger), false).unwrap_err();
    assert!(err.to_string().starts_with("input:1:"), "{err}");
}

#[test]
fn a_one_megabyte_line_is_refused() {
    let long = "x".repeat(1 << 20);
    let text = format!("{HEADER}t,1,0.1,{long},rpc,b,i,3\nt,2,0.2,a,rpc,b,i,3\n");
    let err = run(text.as_bytes(), None, false).unwrap_err();
    assert!(
        err.reason == "row too long" || err.reason == "field too long",
        "{err}"
    );
    let (_, summary) = run(text.as_bytes(), None, true).unwrap();
    assert_eq!(summary.calls, 1);
    for format in [Format::Jaeger, Format::Zipkin, Format::Otlp] {
        let junk = format!("{{\"data\": [{}]}}", "7,".repeat(1 << 19));
        let err = run(junk.as_bytes(), Some(format), false).unwrap_err();
        assert!(err.reason == "unparsable document", "{format}: {err}");
    }
}

#[test]
fn json_errors_name_line_column_and_path() {
    let text = "{\"data\": [\n  {\"traceID\": \"t\", \"spans\": [\n    {\"spanID\": 5}\n  ]}\n]}";
    let err = run(text.as_bytes(), Some(Format::Jaeger), false).unwrap_err();
    assert!(err.to_string().starts_with("input:3:"), "{err}");
    assert!(err.field.contains("spans[0].spanID"), "{err}");
    // Semantic problems (a span without a service) are per-span skips in lenient mode.
    let text = r#"{"data":[{"traceID":"t","spans":[{"spanID":"a","processID":"p9"},{"spanID":"b","processID":"p1"}],"processes":{"p1":{"serviceName":"svc"}}}]}"#;
    let err = run(text.as_bytes(), Some(Format::Jaeger), false).unwrap_err();
    assert_eq!(err.field, "data[0].spans[0].processID");
    let (_, summary) = run(text.as_bytes(), Some(Format::Jaeger), true).unwrap();
    assert_eq!(summary.skipped["incomplete span"], 1);
    // The same in Zipkin (a span without its service) and OTLP (a resource without one).
    for (format, text, field) in [
        (
            Format::Zipkin,
            r#"[{"traceId":"t","id":"a"},{"traceId":"t","id":"b","localEndpoint":{"serviceName":"svc"}}]"#,
            "[0].localEndpoint.serviceName",
        ),
        (
            Format::Otlp,
            r#"{"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[{"spans":[{"traceId":"T","spanId":"1","name":"GET"}]}]}]}"#,
            "resourceSpans[0].scopeSpans[0].spans[0].resource",
        ),
    ] {
        let err = run(text.as_bytes(), Some(format), false).unwrap_err();
        assert_eq!(err.field, field, "{format}: {err}");
        assert_eq!(err.reason, "incomplete span", "{format}: {err}");
        let (_, summary) = run(text.as_bytes(), Some(format), true).unwrap();
        assert_eq!(summary.skipped["incomplete span"], 1, "{format}");
    }
}

#[test]
fn json_lines_resume_after_a_broken_line_in_lenient_mode() {
    let good = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"a"}}]},"scopeSpans":[{"spans":[{"traceId":"T","spanId":"1","kind":3,"name":"GET","attributes":[{"key":"peer.service","value":{"stringValue":"b"}}]}]}]}]}"#;
    let text = format!("{good}\n{{\"resourceSpans\": [oops\n{good}\n");
    assert!(run(text.as_bytes(), Some(Format::Otlp), false).is_err());
    let (_, summary) = run(text.as_bytes(), Some(Format::Otlp), true).unwrap();
    assert_eq!(summary.calls, 2, "{summary}");
    assert_eq!(summary.skipped["unparsable document"], 1);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x7061_7273),
        ..ProptestConfig::default()
    })]

    /// Arbitrary bytes in any format, strict or lenient: an answer, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), which in 0usize..5, lenient in any::<bool>()) {
        let format = [None, Some(Format::Alibaba), Some(Format::Jaeger), Some(Format::Zipkin), Some(Format::Otlp)][which];
        let _ = run(&bytes, format, lenient);
    }

    /// Mutated real-shaped CSV rows: every row is either a call, a counted drop, or a counted
    /// skip (lenient), so nothing is lost silently.
    #[test]
    fn every_csv_row_is_accounted_for(rows in proptest::collection::vec(("[a-c]", "[0-9x]{1,3}", "0(\\.[0-9])*", "[a-d(?)]{0,3}", "rpc|mc|db|mq|http", "[a-d]{0,2}", "-?[0-9]|None"), 0..40)) {
        let mut text = HEADER.to_string();
        for (t, ts, rpc, um, ty, dm, rt) in &rows {
            text += &format!("{t},{ts},{rpc},{um},{ty},{dm},i,{rt}\n");
        }
        let (_, summary) = run(text.as_bytes(), Some(Format::Alibaba), true).unwrap();
        let accounted = summary.calls + summary.dropped.values().sum::<u64>() + summary.skipped_total();
        prop_assert_eq!(summary.records, rows.len() as u64);
        prop_assert_eq!(accounted, rows.len() as u64, "{}", summary);
    }
}
