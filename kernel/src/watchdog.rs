//! The SLO watchdog: a transactional post-condition on outcomes, not only on control state.
//!
//! After the kernel applies a reversible or compensatable step, it watches the step's affected
//! services — its target and every transitive caller in the dependency graph (for a circuit
//! break, the caller's side) — in the health snapshots the monitoring side hands it, against
//! the last snapshot before the step. When any of them stays worse than that baseline for
//! `sustain_s` seconds after a `grace_s` start-up, the kernel takes the step back: an executing
//! plan aborts (its normal undo), a committed step is reverted (a lease through the lease book,
//! otherwise by the step's exact undo). The watch lasts for the step's lease (or a circuit
//! break's duration), or `window_s` after commit for a step without one.
//!
//! Why these numbers: harm (DESIGN §8) is a regression of more than 10 % that lasts more than
//! 30 s after a 5 s grace. The watchdog uses the same 10 % and takes a step back after at most
//! `grace_s + sustain_s` = 15 s, so a regression the step causes is undone before the harm rule
//! could count it — the relation `grace_s + sustain_s < harm grace + sustain` is what matters,
//! not the exact values.
//!
//! Leases are short (a minute) and *renew on evidence*: when a lease lapses, its revert is itself
//! watched for [`WatchdogConfig::probation`]; if the step's affected services regress — the
//! degradation is still needed, the failure it contained persists — the kernel re-imposes the
//! step and renews the lease for twice as long, up to `max_lease_s`. This is how a load
//! balancer's outlier detection returns an ejected host to the pool and ejects it again, for
//! longer, if it still fails. A probe is judged faster than a step (1 s grace, 3 s sustain):
//! a revert moves traffic at once, and a probe that finds the failure still there must be taken
//! back before the monitoring side alerts (10 s) and long before harm could count it. Requests the kernel's own breakers and limiters turn away count as
//! errors, because they are errors in the metrics monitoring reports. Restarts cannot be
//! undone: the evidence rule is their guard.

use crate::health::{Health, ServiceHealth};
use crate::time::VirtualTime;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Watchdog parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchdogConfig {
    /// Seconds after a step before its effect is judged (replicas settle, caches warm).
    pub grace_s: u64,
    /// Seconds a regression must last before the step is taken back.
    pub sustain_s: u64,
    /// Relative worsening that counts as a regression (harm's own 10 %).
    pub relative: f64,
    /// Error-rate noise floor: a rise smaller than this is not a regression (the SLO's 0.1 %).
    pub error_floor: f64,
    /// P99 noise floor, ms: a rise smaller than this is not a regression.
    pub p99_floor_ms: f64,
    /// How long a committed step without a lease stays watched, seconds.
    pub window_s: u64,
    /// The longest a renewed lease may run, seconds: each renewal doubles the lease up to this
    /// (Envoy's outlier ejection grows the same way, to its `max_ejection_time` of 300 s).
    pub max_lease_s: u64,
    /// Seconds after a lapsed lease's revert before it is judged: the revert of a drain, breaker
    /// or limit moves traffic at once, so only the metrics' one-second lag is waited for.
    pub probe_grace_s: u64,
    /// Seconds a regression after a lapsed lease's revert must last to renew the lease. With
    /// the grace, shorter than the monitoring side's alert delay (10 s of violation), so a
    /// probe that finds the failure still there is taken back before it pages anyone.
    pub probe_sustain_s: u64,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        WatchdogConfig {
            grace_s: 5,
            sustain_s: 10,
            relative: 0.10,
            error_floor: 0.001,
            p99_floor_ms: 5.0,
            window_s: 60,
            max_lease_s: 300,
            probe_grace_s: 1,
            probe_sustain_s: 3,
        }
    }
}

impl WatchdogConfig {
    /// The watchdog that judges a lapsed lease's revert: the probe's grace and sustain.
    pub fn probe(&self) -> WatchdogConfig {
        WatchdogConfig {
            grace_s: self.probe_grace_s,
            sustain_s: self.probe_sustain_s,
            ..*self
        }
    }

    /// How long a lapsed lease's revert stays on probation: a regression that starts when the
    /// probe's grace ends still has its sustain period to trip, and as long again for the
    /// metrics to show it.
    pub fn probation(&self) -> Duration {
        Duration::from_secs(self.probe_grace_s + 2 * self.probe_sustain_s)
    }

    /// Whether `now` is worse than `before` by more than the relative margin and the floor.
    /// P99 is that of successful requests, so when errors fall (a remedy working) the P99 of
    /// the requests that now succeed may rise without anything getting worse: a latency
    /// regression counts only while the error rate did not improve.
    pub fn regressed(&self, before: &ServiceHealth, now: &ServiceHealth) -> bool {
        let errors = now.error_rate > before.error_rate * (1.0 + self.relative)
            && now.error_rate - before.error_rate > self.error_floor;
        let errors_improved = before.error_rate - now.error_rate > self.error_floor;
        let latency = now.p99_ms > before.p99_ms * (1.0 + self.relative)
            && now.p99_ms - before.p99_ms > self.p99_floor_ms
            && !errors_improved;
        errors || latency
    }
}

/// One watched step.
#[derive(Clone, Debug)]
pub struct Watch {
    /// Services whose SLOs the step may move, with their health before it.
    pub baseline: Vec<(String, ServiceHealth)>,
    /// When the step was applied.
    pub applied_at: VirtualTime,
    /// Until when it is watched (`None`: while its plan executes, fixed at commit).
    pub until: Option<VirtualTime>,
    /// Since when a regression has lasted, if one is under way.
    pub bad_since: Option<VirtualTime>,
}

impl Watch {
    /// A watch on `services` from `now`, baselined on `health`.
    pub fn new(services: &[String], health: &Health, now: VirtualTime) -> Self {
        Watch {
            baseline: services
                .iter()
                .map(|s| (s.clone(), health.get(s).cloned().unwrap_or_default()))
                .collect(),
            applied_at: now,
            until: None,
            bad_since: None,
        }
    }

    /// Reads a new snapshot; returns the regressed service once a regression has lasted
    /// `sustain_s` past the grace period.
    pub fn judge(
        &mut self,
        cfg: &WatchdogConfig,
        health: &Health,
        now: VirtualTime,
    ) -> Option<String> {
        if now.since(self.applied_at) < Duration::from_secs(cfg.grace_s) {
            return None;
        }
        let worse = self.baseline.iter().find(|(s, before)| {
            health
                .get(s)
                .is_some_and(|current| cfg.regressed(before, current))
        });
        match worse {
            None => {
                self.bad_since = None;
                None
            }
            Some((service, _)) => {
                let since = *self.bad_since.get_or_insert(now);
                (now.since(since) >= Duration::from_secs(cfg.sustain_s)).then(|| service.clone())
            }
        }
    }

    /// Whether the watch is over at `now`.
    pub fn expired(&self, now: VirtualTime) -> bool {
        self.until.is_some_and(|u| now >= u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(service: &str, error_rate: f64, p99_ms: f64) -> Health {
        let mut h = Health::new();
        h.set(
            service,
            ServiceHealth {
                error_rate,
                p99_ms,
                ..ServiceHealth::default()
            },
        );
        h
    }

    /// A watch on `api`, baselined healthy (no errors, 10 ms P99) at time zero.
    fn healthy_api_watch() -> Watch {
        Watch::new(
            &["api".into()],
            &health("api", 0.0, 10.0),
            VirtualTime::ZERO,
        )
    }

    #[test]
    fn a_sustained_regression_after_the_grace_is_reported_once_it_lasts() {
        let cfg = WatchdogConfig::default();
        let mut w = healthy_api_watch();
        let bad = health("api", 0.2, 10.0);
        assert_eq!(
            w.judge(&cfg, &bad, VirtualTime::from_secs(3)),
            None,
            "grace"
        );
        assert_eq!(
            w.judge(&cfg, &bad, VirtualTime::from_secs(5)),
            None,
            "starts"
        );
        assert_eq!(
            w.judge(&cfg, &bad, VirtualTime::from_secs(14)),
            None,
            "not yet"
        );
        assert_eq!(
            w.judge(&cfg, &bad, VirtualTime::from_secs(15)),
            Some("api".into())
        );
    }

    #[test]
    fn a_recovery_resets_the_clock_and_noise_below_the_floors_is_ignored() {
        let cfg = WatchdogConfig::default();
        let mut w = healthy_api_watch();
        let bad = health("api", 0.2, 10.0);
        w.judge(&cfg, &bad, VirtualTime::from_secs(5));
        w.judge(&cfg, &health("api", 0.0, 10.0), VirtualTime::from_secs(10));
        assert_eq!(w.judge(&cfg, &bad, VirtualTime::from_secs(16)), None);
        let noisy = health("api", 0.0005, 14.0);
        for t in 20..60 {
            assert_eq!(w.judge(&cfg, &noisy, VirtualTime::from_secs(t)), None);
        }
    }

    #[test]
    fn slower_successes_while_errors_fall_are_no_regression() {
        let cfg = WatchdogConfig::default();
        let before = ServiceHealth {
            error_rate: 0.5,
            p99_ms: 4.0,
            ..ServiceHealth::default()
        };
        let recovering = ServiceHealth {
            error_rate: 0.01,
            p99_ms: 40.0,
            ..ServiceHealth::default()
        };
        assert!(!cfg.regressed(&before, &recovering));
        let slower = ServiceHealth {
            error_rate: 0.5,
            p99_ms: 40.0,
            ..ServiceHealth::default()
        };
        assert!(cfg.regressed(&before, &slower));
    }
}
