//! Jaeger's `GET /api/dependencies?endTs=…&lookback=…` output: `{"data": [link, …]}` or a
//! bare array of links, each `{"parent", "child", "callCount"}` (Zipkin's `/api/v2/dependencies`
//! has the same shape). It is an aggregated graph, not spans: each link becomes one call of
//! weight `callCount` from `parent` to `child`, at time 0 since the links carry no time, so
//! a window means nothing for it ([`crate::Format::is_graph_only`]) and a topology built from
//! it lacks operations, kinds and timings ([`crate::Format::lacks`]).
//!
//! Per link: `parent` and `child` (service names, required, and different: a self link is
//! dropped as `self call`), `callCount` (a non-negative integer; absent means 1, zero drops
//! the link as `no calls`). Errors name the link as `data[i].field` or `[i].field`.

use crate::json_stream::{Documents, each_document};
use crate::{Call, Endpoint, IngestOptions, IngestSummary, Location, TraceError};
use kernel::{EdgeKind, ServiceKind};
use serde::Deserialize;
use std::io::BufRead;

#[derive(Deserialize)]
#[serde(untagged)]
enum Document {
    Wrapped { data: Option<Vec<Link>> },
    Bare(Vec<Link>),
}

#[derive(Deserialize)]
struct Link {
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    child: Option<String>,
    #[serde(rename = "callCount", default)]
    call_count: Option<serde_json::Value>,
}

/// Reads dependency links, handing each to `sink` with its call count.
pub fn read(
    input: impl BufRead,
    source: &str,
    options: IngestOptions,
    sink: &mut dyn FnMut(&Call<'_>, u64),
) -> Result<IngestSummary, TraceError> {
    let mut docs = Documents::new(input, source);
    let mut summary = IngestSummary::default();
    each_document(&mut docs, options, &mut summary, |docs, summary| {
        let line = docs.line();
        let document: Document = docs.parse(std::marker::PhantomData)?;
        let (links, prefix) = match document {
            Document::Wrapped { data } => (data.unwrap_or_default(), "data"),
            Document::Bare(links) => (links, ""),
        };
        for (i, link) in links.into_iter().enumerate() {
            summary.records += 1;
            let problem = |field: &str, message: String| {
                TraceError::new(
                    source,
                    Location::Line(line),
                    format!("{prefix}[{i}].{field}"),
                    "incomplete link",
                    message,
                )
            };
            let parent = link.parent.filter(|p| !p.is_empty());
            let child = link.child.filter(|c| !c.is_empty());
            let (parent, child) = match (parent, child) {
                (Some(p), Some(c)) => (p, c),
                (None, _) => {
                    summary.malformed(options, problem("parent", "missing".into()))?;
                    continue;
                }
                (_, None) => {
                    summary.malformed(options, problem("child", "missing".into()))?;
                    continue;
                }
            };
            let count = match &link.call_count {
                None | Some(serde_json::Value::Null) => 1,
                Some(serde_json::Value::Number(n)) if n.as_u64().is_some() => {
                    n.as_u64().unwrap_or(1)
                }
                Some(other) => {
                    let e = problem(
                        "callCount",
                        format!("`{other}` is not a non-negative whole number of calls"),
                    );
                    summary.malformed(options, e)?;
                    continue;
                }
            };
            if parent == child {
                summary.drop("self call");
                continue;
            }
            if count == 0 {
                summary.drop("no calls");
                continue;
            }
            summary.calls += count;
            let end = |name| Endpoint {
                name,
                kind: ServiceKind::Stateless,
                unknown: crate::is_placeholder(name),
            };
            sink(
                &Call {
                    time_us: 0,
                    caller: end(&parent),
                    callee: end(&child),
                    kind: EdgeKind::Rpc,
                },
                count,
            );
        }
        Ok(())
    })?;
    Ok(summary)
}
