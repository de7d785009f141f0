//! Alibaba microservice call-graph CSV (`cluster-trace-microservices-v2021` `MSCallGraph`,
//! `-v2022` `CallGraph`).
//!
//! Columns are found by header name, so the v2021 order
//! (`traceid,timestamp,rpcid,um,rpctype,dm,interface,rt`), the v2022 order
//! (`timestamp,traceid,service,rpc_id,rpctype,um,uminstanceid,interface,dm,dminstanceid,rt`) and a
//! leading unnamed pandas index column all work. Each row is one call `um → dm`; the quirks of
//! the real data (`../shared/research/datasets.md` §1.3) are handled as follows:
//!
//! - **Duplicate rows**: rpc/http calls are logged on both sides (positive and negative `rt`)
//!   with the same `(traceid, rpcid, um, dm)`; a second sighting within at least the last
//!   65,536 rows is dropped (counted as `duplicate`). Rows with the same rpcid but different callers
//!   (context-propagation errors) are kept.
//! - **Self calls** (`.0` rpcids, `um == dm`) are dropped (`self call`).
//! - **Placeholders** `(?)`, `UNKNOWN`, `UNAVAILABLE`, `USER`, empty: kept as distinct unknown
//!   nodes named after their known neighbour (`(?) (caller of MS_3)`), so unrelated services are
//!   never joined through one placeholder node. Rows with both ends unknown are dropped.
//! - **rpctype**: `rpc`, `http` → `rpc` edges; `mc` → `cache` (callee is a cache); `db` → `db`
//!   (callee is a database); `mq` → `mq`; anything else (`userDefined`, `UNKNOWN`) → `rpc`.
//! - **Corrupt rows** (`rt` of `None` or an `MS_…` name after a column shift, a non-numeric
//!   timestamp, a wrong field count, an over-long field, non-UTF-8) are malformed: an error in
//!   strict mode, a counted skip in lenient mode.
//!
//! Timestamps are milliseconds in the trace's own epoch and become microseconds.

use crate::csv_rows::{Record, Rows};
use crate::{Call, Endpoint, IngestOptions, IngestSummary, Location, TraceError, io_error};
use indexmap::IndexSet;
use kernel::{EdgeKind, ServiceKind};
use rustc_hash::FxBuildHasher;
use std::hash::{BuildHasher, Hasher};
use std::io::BufRead;

/// Longest field accepted, in bytes.
pub const MAX_FIELD_BYTES: usize = 4096;
/// Longest row accepted, in bytes.
pub const MAX_ROW_BYTES: usize = 64 << 10;
/// How many recent rows duplicate detection remembers.
pub const DEDUP_WINDOW_ROWS: usize = 1 << 16;

#[derive(Clone, Copy, Debug)]
struct Columns {
    traceid: usize,
    timestamp: usize,
    rpcid: usize,
    um: usize,
    dm: usize,
    rpctype: usize,
    rt: usize,
    count: usize,
}

impl Columns {
    fn from_header(header: &Record<'_>, source: &str) -> Result<Self, TraceError> {
        let names: Vec<String> = (0..header.len())
            .map(|i| header.field(i))
            .map(|f| {
                String::from_utf8_lossy(f)
                    .trim()
                    .trim_start_matches('\u{feff}')
                    .to_string()
            })
            .collect();
        let find = |wanted: &[&str]| names.iter().position(|n| wanted.contains(&n.as_str()));
        let need = |wanted: &[&str]| {
            find(wanted).ok_or_else(|| {
                TraceError::new(
                    source,
                    Location::Line(1),
                    wanted[0],
                    "bad header",
                    format!(
                        "the header has no `{}` column (found: {}); is this an Alibaba call-graph CSV?",
                        wanted[0],
                        names.join(",")
                    ),
                )
            })
        };
        Ok(Columns {
            traceid: need(&["traceid"])?,
            timestamp: need(&["timestamp"])?,
            rpcid: need(&["rpcid", "rpc_id"])?,
            um: need(&["um"])?,
            dm: need(&["dm"])?,
            rpctype: need(&["rpctype"])?,
            rt: need(&["rt"])?,
            count: names.len(),
        })
    }
}

/// Reads Alibaba call-graph CSV from `input` (already decompressed), handing each call to
/// `sink`. See the [module documentation](self) for the rules.
pub fn read(
    input: impl BufRead,
    source: &str,
    options: IngestOptions,
    sink: &mut dyn FnMut(&Call<'_>),
) -> Result<IngestSummary, TraceError> {
    let mut rows = Rows::new(input);
    let header = match rows.header().map_err(|e| io_error(source, &e))? {
        Some(h) if !(h.len() == 1 && h.field(0).is_empty()) => h,
        _ => {
            return Err(TraceError::new(
                source,
                Location::Input,
                ".",
                "empty input",
                "the input is empty",
            ));
        }
    };
    let cols = Columns::from_header(&header, source)?;
    let mut summary = IngestSummary::default();
    let mut dedup = Dedup::default();
    let mut caller_name = String::new();
    let mut callee_name = String::new();
    while let Some(record) = rows.next_record().map_err(|e| io_error(source, &e))? {
        summary.records += 1;
        let row = match parse_row(&record, &cols, source) {
            Ok(row) => row,
            Err(e) => {
                summary.malformed(options, e)?;
                continue;
            }
        };
        let (um_unknown, dm_unknown) =
            (crate::is_placeholder(row.um), crate::is_placeholder(row.dm));
        if um_unknown && dm_unknown {
            summary.drop("both ends unknown");
            continue;
        }
        if row.um == row.dm {
            // In-process calls (`.0` rpcids) are not dependencies between services.
            summary.drop("self call");
            continue;
        }
        if dedup.seen_before(row.traceid, row.rpcid, row.um, row.dm) {
            summary.drop("duplicate");
            continue;
        }
        let (kind, callee_kind) = classify(row.rpctype);
        let caller = if um_unknown {
            placeholder(&mut caller_name, row.um, "caller of", row.dm)
        } else {
            row.um
        };
        let callee = if dm_unknown {
            placeholder(&mut callee_name, row.dm, "callee of", row.um)
        } else {
            row.dm
        };
        summary.calls += 1;
        sink(&Call {
            time_us: row.time_us,
            caller: Endpoint {
                name: caller,
                kind: if row.um == "USER" {
                    ServiceKind::Frontend
                } else {
                    ServiceKind::Stateless
                },
                unknown: um_unknown,
            },
            callee: Endpoint {
                name: callee,
                kind: callee_kind,
                unknown: dm_unknown,
            },
            kind,
        });
    }
    Ok(summary)
}

struct Row<'a> {
    traceid: &'a str,
    time_us: u64,
    rpcid: &'a str,
    um: &'a str,
    dm: &'a str,
    rpctype: &'a str,
}

fn parse_row<'a>(record: &Record<'a>, cols: &Columns, source: &str) -> Result<Row<'a>, TraceError> {
    let err = |field: &str, reason: &'static str, message: String| {
        TraceError::new(source, Location::Line(record.line), field, reason, message)
    };
    let row_bytes = record.field_bytes();
    if row_bytes > MAX_ROW_BYTES {
        return Err(err(
            ".",
            "row too long",
            format!("row is {row_bytes} bytes, more than {MAX_ROW_BYTES}"),
        ));
    }
    if record.len() != cols.count {
        return Err(err(
            ".",
            "wrong field count",
            format!(
                "expected {} fields as in the header, found {} (shifted columns?)",
                cols.count,
                record.len()
            ),
        ));
    }
    // One UTF-8 check for the whole record; a field is then a slice of it (when its bounds
    // are character boundaries, as they are unless the record is corrupt). Otherwise each
    // field read is checked on its own, so that the error names it.
    let whole = std::str::from_utf8(record.data).ok();
    let text = |i: usize, field: &str| -> Result<&'a str, TraceError> {
        let (a, b) = record.bounds[i];
        if b - a > MAX_FIELD_BYTES {
            return Err(err(
                field,
                "field too long",
                format!("{} bytes, more than {MAX_FIELD_BYTES}", b - a),
            ));
        }
        match whole.and_then(|w| w.get(a..b)) {
            Some(text) => Ok(trim(text)),
            None => std::str::from_utf8(&record.data[a..b])
                .map(trim)
                .map_err(|_| err(field, "not UTF-8", "is not valid UTF-8".into())),
        }
    };
    let traceid = text(cols.traceid, "traceid")?;
    let rpcid = text(cols.rpcid, "rpcid")?;
    let um = text(cols.um, "um")?;
    let dm = text(cols.dm, "dm")?;
    let rpctype = text(cols.rpctype, "rpctype")?;
    let ts = text(cols.timestamp, "timestamp")?;
    let time_ms = ts
        .parse::<u64>()
        .ok()
        .or_else(|| {
            ts.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .map(|v| v as u64)
        })
        .ok_or_else(|| {
            err(
                "timestamp",
                "bad timestamp",
                format!("`{ts}` is not a non-negative number of milliseconds"),
            )
        })?;
    let rt = text(cols.rt, "rt")?;
    if rt.parse::<f64>().map_or(true, |v| !v.is_finite()) {
        return Err(err(
            "rt",
            "bad rt",
            format!("`{rt}` is not a response time (corrupt row or shifted columns)"),
        ));
    }
    if traceid.is_empty() || rpcid.is_empty() {
        let field = if traceid.is_empty() {
            "traceid"
        } else {
            "rpcid"
        };
        return Err(err(field, "missing id", "must not be empty".into()));
    }
    Ok(Row {
        traceid,
        time_us: time_ms.saturating_mul(1000),
        rpcid,
        um,
        dm,
        rpctype,
    })
}

/// `str::trim`, with a shortcut for the usual field that starts and ends with a visible ASCII
/// character (no Unicode whitespace can be at either end then).
fn trim(text: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|&b| b.is_ascii_graphic());
    let bytes = text.as_bytes();
    if visible(bytes.first()) && visible(bytes.last()) {
        text
    } else {
        text.trim()
    }
}

/// Edge kind and callee kind from `rpctype`.
fn classify(rpctype: &str) -> (EdgeKind, ServiceKind) {
    match rpctype {
        "mc" => (EdgeKind::Cache, ServiceKind::Cache),
        "db" => (EdgeKind::Db, ServiceKind::Db),
        "mq" => (EdgeKind::Mq, ServiceKind::Stateless),
        _ => (EdgeKind::Rpc, ServiceKind::Stateless),
    }
}

fn placeholder<'b>(buf: &'b mut String, raw: &str, relation: &str, neighbour: &str) -> &'b str {
    buf.clear();
    buf.push_str(if raw.is_empty() { "(empty)" } else { raw });
    buf.push_str(" (");
    buf.push_str(relation);
    buf.push(' ');
    buf.push_str(neighbour);
    buf.push(')');
    buf
}

/// Remembers the call keys of at least the last [`DEDUP_WINDOW_ROWS`] rows, in two
/// generations: when the current one fills up, the previous one is dropped wholesale (no
/// per-row eviction on the hot path).
#[derive(Default)]
struct Dedup {
    current: IndexSet<u64, FxBuildHasher>,
    previous: IndexSet<u64, FxBuildHasher>,
}

impl Dedup {
    fn seen_before(&mut self, traceid: &str, rpcid: &str, um: &str, dm: &str) -> bool {
        let mut h = FxBuildHasher.build_hasher();
        for part in [traceid, rpcid, um, dm] {
            h.write(part.as_bytes());
            h.write_u8(0xff);
        }
        let key = h.finish();
        if self.previous.contains(&key) || !self.current.insert(key) {
            return true;
        }
        if self.current.len() >= DEDUP_WINDOW_ROWS {
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.clear();
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(text: &str, lenient: bool) -> Result<(IngestSummary, Vec<String>), TraceError> {
        let mut out = Vec::new();
        let summary = read(
            text.as_bytes(),
            "t.csv",
            IngestOptions { lenient },
            &mut |c| out.push(format!("{}>{}:{:?}", c.caller.name, c.callee.name, c.kind)),
        )?;
        Ok((summary, out))
    }

    #[test]
    fn v2021_rows_with_duplicates_self_calls_and_placeholders() {
        let text = "traceid,timestamp,rpcid,um,rpctype,dm,interface,rt\n\
            t1,100,0.1,a,rpc,b,i,3\n\
            t1,100,0.1,a,rpc,b,i,-2\n\
            t1,101,0.1.0,b,userDefined,b,i,0\n\
            t1,101,0.1.1,b,mc,c,,0\n\
            t1,102,0.2,(?),http,d,i,5\n\
            t2,103,0.1,,http,(?),i,5\n";
        let (summary, calls) = calls(text, false).unwrap();
        assert_eq!(calls, ["a>b:Rpc", "b>c:Cache", "(?) (caller of d)>d:Rpc"]);
        assert_eq!(summary.records, 6);
        assert_eq!(summary.dropped["duplicate"], 1);
        assert_eq!(summary.dropped["self call"], 1);
        assert_eq!(summary.dropped["both ends unknown"], 1);
    }

    #[test]
    fn v2022_header_with_index_column_is_read_by_name() {
        let text = ",timestamp,traceid,service,rpcid,rpctype,um,uminstanceid,interface,dm,dminstanceid,rt\n\
            0,169526,T_1,S_9,0.1.2,rpc,MS_1,MS_1_POD_5,x,MS_2,MS_2_POD_1,3.0\n\
            1,111320,T_2,S_5,0,rpc,USER,USER,y,MS_3,MS_3_POD_6,1.0\n";
        let (_, calls) = calls(text, false).unwrap();
        assert_eq!(calls, ["MS_1>MS_2:Rpc", "USER (caller of MS_3)>MS_3:Rpc"]);
    }

    #[test]
    fn malformed_rows_fail_strictly_and_are_counted_leniently() {
        let text = "timestamp,traceid,service,rpc_id,rpctype,um,uminstanceid,interface,dm,dminstanceid,rt\n\
            1,T_1,S,0.1,rpc,MS_1,p,i,MS_2,q,None\n\
            2,T_1,S,0.2,rpc,MS_1,p,i,MS_2,q\n\
            x,T_1,S,0.3,rpc,MS_1,p,i,MS_2,q,1\n\
            4,T_1,S,0.4,rpc,MS_1,p,i,MS_4,q,MS_77\n\
            5,T_1,S,0.5,rpc,MS_1,p,i,MS_5,q,1.5\n";
        let err = calls(text, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.csv:2: field `rt`: `None` is not a response time (corrupt row or shifted columns)"
        );
        let (summary, calls) = calls(text, true).unwrap();
        assert_eq!(calls, ["MS_1>MS_5:Rpc"]);
        assert_eq!(summary.skipped["bad rt"], 2);
        assert_eq!(summary.skipped["wrong field count"], 1);
        assert_eq!(summary.skipped["bad timestamp"], 1);
        assert!(
            summary.to_string().contains("4 malformed skipped"),
            "{summary}"
        );
    }

    #[test]
    fn errors_name_the_physical_line_with_lf_and_crlf_endings() {
        for ending in ["\n", "\r\n"] {
            let text = [
                "timestamp,traceid,service,rpc_id,rpctype,um,uminstanceid,interface,dm,dminstanceid,rt",
                "1,T_1,S,0.1,rpc,MS_1,p,i,MS_2,q,1",
                "2,T_1,S,0.2,rpc,MS_1,p,i,MS_3,q,1",
                "3,T_1,S,0.3,rpc,MS_1,p,i,MS_4,q,oops",
                "",
            ]
            .join(ending);
            let err = calls(&text, false).unwrap_err();
            assert!(
                err.to_string().starts_with("t.csv:4: "),
                "{ending:?}: {err}"
            );
        }
    }

    #[test]
    fn wrong_headers_and_empty_input_are_clear_errors() {
        let err = calls("a,b,c\n1,2,3\n", false).unwrap_err();
        assert!(err.message.contains("no `traceid` column"), "{err}");
        let err = calls("", false).unwrap_err();
        assert_eq!(err.reason, "empty input");
    }
}
