//! Format detection from the first bytes of an input, with the reason for the choice.
//!
//! The reason travels with every error of an auto-detected input ("detected as Zipkin v1
//! because the first span has `annotations`"): when a file fails, the user learns which reader
//! was tried and why, and so whether to fix the file or to choose another `--format`. Inputs
//! that are no trace at all (an HTML error page saved as `.json`, a binary file) are named as
//! such instead of failing deep inside the CSV reader.

use crate::Format;
use crate::span_csv::SpanColumns;

/// What the first bytes of an input look like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detection {
    /// A trace format, with the reason it was chosen (completes "detected as X because …").
    Format(Format, String),
    /// Not a trace: what it looks like instead ("looks like HTML, not a trace").
    NotATrace(String),
    /// Nothing but whitespace.
    Empty,
}

/// Detects the format of `head`, the first (decompressed) bytes of an input.
pub fn detect(head: &[u8]) -> Detection {
    let text = String::from_utf8_lossy(head);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.is_empty() {
        return Detection::Empty;
    }
    if looks_binary(head) {
        return Detection::NotATrace("looks like binary data, not a trace".into());
    }
    if trimmed.starts_with('<') {
        let lower = trimmed[..trimmed.len().min(512)].to_ascii_lowercase();
        let what = if lower.contains("<html") || lower.contains("<!doctype html") {
            "HTML"
        } else {
            "XML"
        };
        return Detection::NotATrace(format!("looks like {what}, not a trace"));
    }
    let found = |format: Format, why: &str| Detection::Format(format, why.to_string());
    if trimmed.starts_with('[') {
        if has_key(trimmed, "callCount") && has_key(trimmed, "parent") {
            return found(
                Format::JaegerDependencies,
                "the first element has `parent`, `child` and `callCount`",
            );
        }
        if has_key(trimmed, "binaryAnnotations") {
            return found(Format::ZipkinV1, "the first span has `binaryAnnotations`");
        }
        if has_key(trimmed, "annotations")
            && !has_key(trimmed, "localEndpoint")
            && has_key(trimmed, "endpoint")
        {
            return found(
                Format::ZipkinV1,
                "the first span has `annotations` with an `endpoint` and no `localEndpoint`",
            );
        }
        return found(Format::Zipkin, "the input is a JSON array of spans");
    }
    if trimmed.starts_with('{') {
        let first = first_key(trimmed);
        let is_first = |k: &str| first.as_deref() == Some(k);
        if is_first("resourceSpans") || is_first("resource_spans") {
            return found(Format::Otlp, "the document starts with `resourceSpans`");
        }
        if is_first("batches") {
            return found(
                Format::Otlp,
                "the document starts with `batches` (Grafana Tempo's OTLP JSON)",
            );
        }
        if has_key(trimmed, "callCount") && has_key(trimmed, "child") {
            return found(
                Format::JaegerDependencies,
                "the document holds `parent`, `child` and `callCount` links",
            );
        }
        if is_first("data") {
            return found(Format::Jaeger, "the document starts with `data`");
        }
        if matches!(first.as_deref(), Some("traceID" | "spans" | "processes")) {
            return found(
                Format::Jaeger,
                "the document has `traceID`, `spans` and `processes` (one Jaeger trace)",
            );
        }
        if has_key(trimmed, "resourceSpans") || has_key(trimmed, "batches") {
            return found(
                Format::Otlp,
                "the document has `resourceSpans` or `batches`",
            );
        }
        if has_key(trimmed, "binaryAnnotations")
            || (has_key(trimmed, "annotations") && !has_key(trimmed, "localEndpoint"))
        {
            return found(Format::ZipkinV1, "the span has `annotations`");
        }
        return found(
            Format::Jaeger,
            "the input is a JSON object (Jaeger is the default for objects)",
        );
    }
    let first_line = trimmed.lines().next().unwrap_or("");
    if first_line.contains(',') || first_line.contains('\t') {
        let fields: Vec<String> = first_line
            .split(',')
            .map(|f| f.trim().trim_matches('"').to_ascii_lowercase())
            .collect();
        let has = |n: &str| fields.iter().any(|f| f == n);
        if has("um") && has("dm") {
            return found(Format::Alibaba, "the header has `um` and `dm` columns");
        }
        if SpanColumns::detect(first_line).is_ok() {
            return found(
                Format::SpanCsv,
                "the header has trace, span, parent, service (or pod) and start columns",
            );
        }
        return found(
            Format::Alibaba,
            "the input is CSV-like and matches no span CSV header",
        );
    }
    Detection::NotATrace(
        "looks like plain text, not a trace (neither JSON nor a CSV header)".into(),
    )
}

/// NUL bytes or many control characters in the first bytes: not text.
fn looks_binary(head: &[u8]) -> bool {
    let sample = &head[..head.len().min(1024)];
    if sample.contains(&0) {
        return true;
    }
    let control = sample
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c))
        .count();
    control * 10 > sample.len()
}

/// Whether `"key"` occurs followed by a colon (a JSON key, not a value).
pub(crate) fn has_key(text: &str, key: &str) -> bool {
    let needle = format!("\"{key}\"");
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        let after = &rest[at + needle.len()..];
        if after.trim_start().starts_with(':') {
            return true;
        }
        rest = after;
    }
    false
}

/// The first key of the object `text` starts with.
fn first_key(text: &str) -> Option<String> {
    let rest = text.strip_prefix('{')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(rest[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(text: &str) -> Format {
        match detect(text.as_bytes()) {
            Detection::Format(f, _) => f,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_format_is_recognised() {
        assert_eq!(format(r#"{"data":[{"traceID":"a"}]}"#), Format::Jaeger);
        assert_eq!(format(r#"{"traceID":"a","spans":[]}"#), Format::Jaeger);
        assert_eq!(
            format(r#"[{"parent":"a","child":"b","callCount":3}]"#),
            Format::JaegerDependencies
        );
        assert_eq!(
            format(r#"{"data":[{"parent":"a","child":"b","callCount":3}]}"#),
            Format::JaegerDependencies
        );
        assert_eq!(format(r#"{"batches":[]}"#), Format::Otlp);
        assert_eq!(format(r#"{"resourceSpans":[]}"#), Format::Otlp);
        assert_eq!(
            format(r#"[{"traceId":"1","annotations":[{"value":"cs","endpoint":{}}]}]"#),
            Format::ZipkinV1
        );
        assert_eq!(
            format(r#"[{"traceId":"1","localEndpoint":{"serviceName":"a"}}]"#),
            Format::Zipkin
        );
        assert_eq!(
            format("traceid,timestamp,rpcid,um,rpctype,dm\n"),
            Format::Alibaba
        );
        assert_eq!(
            format("TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano\n"),
            Format::SpanCsv
        );
    }

    #[test]
    fn non_traces_are_named() {
        assert_eq!(
            detect(b"<!DOCTYPE html><html><body>502</body></html>"),
            Detection::NotATrace("looks like HTML, not a trace".into())
        );
        assert_eq!(
            detect(b"\x89PNG\r\n\x1a\n\0\0\0"),
            Detection::NotATrace("looks like binary data, not a trace".into())
        );
        assert_eq!(detect(b"  \n"), Detection::Empty);
    }
}
