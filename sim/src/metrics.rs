//! Per-virtual-second metrics per service and per user path, and SLO evaluation.
//!
//! Each second and each *scope* (a service, as seen by its callers, or a user path, as seen by
//! users) gets one [`SecondStats`] row: request count, errors split by cause, latency P50/P99 of
//! successful requests (hdrhistogram, 2 significant digits, µs), and the P99 and count of the
//! **clean** requests — those no injected fault touched — which the harm oracle uses so that
//! what the fault did is not charged to an action. Rows are written as CSV or JSON lines.

use crate::cause::Cause;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::io::Write;

/// Latency SLO: P99 below this, milliseconds (DESIGN §8).
pub const SLO_P99_MS: f64 = 100.0;
/// Error-rate SLO: below this fraction (DESIGN §8).
pub const SLO_ERROR_RATE: f64 = 0.001;

/// What a row describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    /// A service: calls it answered.
    Service,
    /// A user path: requests users sent.
    Path,
}

/// One second of one scope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecondStats {
    /// Second since the start of the run.
    pub second: u32,
    /// Service or path.
    pub kind: ScopeKind,
    /// Its name.
    pub name: String,
    /// Requests that completed (successfully or not) in this second.
    pub count: u64,
    /// Failed requests caused by an injected fault.
    pub errors_fault: u64,
    /// Failed requests caused by an action.
    pub errors_action: u64,
    /// Failed requests caused by organic overload.
    pub errors_overload: u64,
    /// Median latency of successful requests, ms (0 when none).
    pub p50_ms: f64,
    /// 99th-percentile latency of successful requests, ms (0 when none).
    pub p99_ms: f64,
    /// Successful requests no fault touched.
    pub clean_count: u64,
    /// 99th-percentile latency of those, ms (0 when none).
    pub clean_p99_ms: f64,
}

impl SecondStats {
    /// All errors.
    pub fn errors(&self) -> u64 {
        self.errors_fault + self.errors_action + self.errors_overload
    }

    /// Error rate over all requests (0 with no requests).
    pub fn error_rate(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.errors() as f64 / self.count as f64
        }
    }

    /// Error rate counting only errors not caused by the injected fault.
    pub fn non_fault_error_rate(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            (self.errors_action + self.errors_overload) as f64 / self.count as f64
        }
    }

    /// Whether both SLOs hold this second (P99 < 100 ms, errors < 0.1 %). A second with no
    /// requests holds vacuously.
    pub fn slo_ok(&self) -> bool {
        self.p99_ms < SLO_P99_MS && self.error_rate() < SLO_ERROR_RATE
    }
}

/// Accumulator for one scope during the current second.
#[derive(Debug)]
struct Accum {
    count: u64,
    errors: [u64; 3],
    all: Histogram<u64>,
    clean: Histogram<u64>,
}

impl Accum {
    fn new() -> Self {
        // Auto-resizing: the counts array only covers the largest latency seen, which keeps the
        // per-second reset cheap.
        let h = || Histogram::<u64>::new(2).expect("valid precision");
        Accum {
            count: 0,
            errors: [0; 3],
            all: h(),
            clean: h(),
        }
    }
}

/// Collects per-second rows for every scope.
#[derive(Debug)]
pub struct Metrics {
    names: Vec<(ScopeKind, String)>,
    current: Vec<Accum>,
    second: u32,
    rows: Vec<SecondStats>,
}

/// A completed request or call, as metrics see it.
#[derive(Clone, Copy, Debug)]
pub struct Completion {
    /// Latency, microseconds.
    pub latency_us: u64,
    /// `None` on success.
    pub error: Option<Cause>,
    /// Whether an injected fault touched it.
    pub touched_fault: bool,
}

impl Metrics {
    /// Metrics for `services` and `paths` (names in index order).
    pub fn new(services: &[String], paths: &[String]) -> Self {
        let names: Vec<(ScopeKind, String)> = services
            .iter()
            .map(|s| (ScopeKind::Service, s.clone()))
            .chain(paths.iter().map(|p| (ScopeKind::Path, p.clone())))
            .collect();
        Metrics {
            current: names.iter().map(|_| Accum::new()).collect(),
            names,
            second: 0,
            rows: Vec::new(),
        }
    }

    fn record(&mut self, scope: usize, c: Completion) {
        let a = &mut self.current[scope];
        a.count += 1;
        match c.error {
            Some(Cause::Fault(_)) => a.errors[0] += 1,
            Some(Cause::Action(_)) => a.errors[1] += 1,
            Some(Cause::Overload) => a.errors[2] += 1,
            None => {
                let v = c.latency_us.clamp(1, 3_600_000_000);
                a.all
                    .record(v)
                    .expect("auto-resizing histograms accept any value");
                if !c.touched_fault {
                    a.clean
                        .record(v)
                        .expect("auto-resizing histograms accept any value");
                }
            }
        }
    }

    /// Records a call answered by service `s`.
    pub fn record_service(&mut self, s: usize, c: Completion) {
        self.record(s, c);
    }

    /// Records a user request on path `p` (with `services` services before the paths).
    pub fn record_path(&mut self, services: usize, p: usize, c: Completion) {
        self.record(services + p, c);
    }

    /// Closes the current second and starts the next.
    pub fn flush_second(&mut self) {
        let ms = |h: &Histogram<u64>, q: f64| {
            if h.is_empty() {
                0.0
            } else {
                h.value_at_quantile(q) as f64 / 1000.0
            }
        };
        for (i, a) in self.current.iter_mut().enumerate() {
            let (kind, name) = &self.names[i];
            self.rows.push(SecondStats {
                second: self.second,
                kind: *kind,
                name: name.clone(),
                count: a.count,
                errors_fault: a.errors[0],
                errors_action: a.errors[1],
                errors_overload: a.errors[2],
                p50_ms: ms(&a.all, 0.5),
                p99_ms: ms(&a.all, 0.99),
                clean_count: a.clean.len(),
                clean_p99_ms: ms(&a.clean, 0.99),
            });
            a.count = 0;
            a.errors = [0; 3];
            if !a.all.is_empty() {
                a.all.reset();
            }
            if !a.clean.is_empty() {
                a.clean.reset();
            }
        }
        self.second += 1;
    }

    /// Seconds flushed so far.
    pub fn seconds(&self) -> u32 {
        self.second
    }

    /// Every row so far, second by second, services then paths.
    pub fn rows(&self) -> &[SecondStats] {
        &self.rows
    }

    /// The rows of one scope, in time order.
    pub fn series(&self, kind: ScopeKind, name: &str) -> Vec<&SecondStats> {
        self.rows
            .iter()
            .filter(|r| r.kind == kind && r.name == name)
            .collect()
    }

    /// Writes every row as CSV.
    pub fn write_csv(&self, w: impl Write) -> std::io::Result<()> {
        write_csv(&self.rows, w)
    }

    /// Writes every row as one JSON object per line.
    pub fn write_jsonl(&self, mut w: impl Write) -> std::io::Result<()> {
        for r in &self.rows {
            serde_json::to_writer(&mut w, r)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// Writes rows as CSV (the format of `metrics.csv`).
pub fn write_csv(rows: &[SecondStats], mut w: impl Write) -> std::io::Result<()> {
    writeln!(
        w,
        "second,kind,name,count,errors,errors_fault,errors_action,errors_overload,error_rate,p50_ms,p99_ms,clean_count,clean_p99_ms"
    )?;
    for r in rows {
        writeln!(
            w,
            "{},{},{},{},{},{},{},{},{:.6},{:.3},{:.3},{},{:.3}",
            r.second,
            match r.kind {
                ScopeKind::Service => "service",
                ScopeKind::Path => "path",
            },
            r.name,
            r.count,
            r.errors(),
            r.errors_fault,
            r.errors_action,
            r.errors_overload,
            r.error_rate(),
            r.p50_ms,
            r.p99_ms,
            r.clean_count,
            r.clean_p99_ms
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_split_errors_by_cause_and_exclude_fault_touched_latency() {
        let mut m = Metrics::new(&["a".into()], &["p".into()]);
        for i in 0..49 {
            m.record_path(
                1,
                0,
                Completion {
                    latency_us: 1000 + i,
                    error: None,
                    touched_fault: false,
                },
            );
        }
        m.record_path(
            1,
            0,
            Completion {
                latency_us: 500_000,
                error: None,
                touched_fault: true,
            },
        );
        m.record_path(
            1,
            0,
            Completion {
                latency_us: 10,
                error: Some(Cause::Fault(1)),
                touched_fault: true,
            },
        );
        m.record_path(
            1,
            0,
            Completion {
                latency_us: 10,
                error: Some(Cause::Action(2)),
                touched_fault: false,
            },
        );
        m.flush_second();
        let p = &m.series(ScopeKind::Path, "p")[0];
        assert_eq!((p.count, p.errors_fault, p.errors_action), (52, 1, 1));
        assert!(
            p.p99_ms > 400.0,
            "the slow fault-touched request dominates P99: {}",
            p.p99_ms
        );
        assert!(
            p.clean_p99_ms < 1.2,
            "clean P99 excludes it: {}",
            p.clean_p99_ms
        );
        assert_eq!(p.clean_count, 49);
        assert!(!p.slo_ok());
        let a = &m.series(ScopeKind::Service, "a")[0];
        assert!(a.slo_ok(), "an idle second holds vacuously");
        let mut csv = Vec::new();
        m.write_csv(&mut csv).unwrap();
        assert_eq!(String::from_utf8(csv).unwrap().lines().count(), 3);
    }
}
