//! Conformance: the same 60-virtual-second socialNetwork scenario with a crash fault, on the
//! event-driven network and on turmoil, gives the same per-path error rates and latencies within
//! a tolerance explained by turmoil's ticks.
//!
//! turmoil advances in ticks (here 0.5 ms) and the core exchanges messages with it between
//! ticks, so a hop takes a whole number of ticks: measured, about 2.3 ticks (1.15 ms) on
//! average. The event-driven run is configured with the same mean hop (1.0 ms + an exponential
//! 0.15 ms). What remains is the *shape* of the hop delay — turmoil's is discrete, the other
//! continuous — which moves per-path P99 by at most a few hop-widths: we allow 25 % (a
//! read-home-timeline request crosses 14 hops, and its P99 is about 20 ms here). Error rates
//! come from the fault and the timeouts, which do not depend on sub-millisecond timing: they
//! must agree within 2 percentage points.

use faults::{
    CrashMode, FaultInjector, FaultKind, FaultSchedule, FaultSpec, ReplicaPick, run_with_faults,
};
use kernel::VirtualTime;
use sim::rng::{self, Stream};
use sim::turmoil_net::TurmoilNetwork;
use sim::{Network, ScopeKind, Sim, SimConfig};
use std::time::Duration;

const TICK: Duration = Duration::from_micros(500);

struct PathResult {
    error_rate: f64,
    steady_p99_ms: f64,
}

fn scenario<N: Network>(net: N, cfg: SimConfig) -> Vec<(String, PathResult)> {
    let spec =
        deathstarbench::load("socialNetwork", &deathstarbench::Deployment::default()).unwrap();
    let mut sim = Sim::with_network(spec, cfg, net).unwrap();
    let schedule = FaultSchedule {
        faults: vec![FaultSpec {
            target: "post-storage-service".into(),
            replicas: ReplicaPick::All,
            start_s: 20.0,
            duration_s: 20.0,
            kind: FaultKind::Crash {
                mode: CrashMode::Kill,
            },
        }],
    };
    let injector = FaultInjector::new(schedule, rng::stream(cfg.seed, Stream::Faults));
    run_with_faults(&mut sim, injector, VirtualTime::from_secs(60)).unwrap();
    let paths: Vec<String> = sim.spec().paths.iter().map(|p| p.name.clone()).collect();
    paths
        .into_iter()
        .map(|p| {
            let rows = sim.metrics().series(ScopeKind::Path, &p);
            let count: u64 = rows.iter().map(|r| r.count).sum();
            let errors: u64 = rows.iter().map(|r| r.errors()).sum();
            let steady: Vec<f64> = rows
                .iter()
                .filter(|r| (5..20).contains(&r.second) && r.p99_ms > 0.0)
                .map(|r| r.p99_ms)
                .collect();
            let result = PathResult {
                error_rate: errors as f64 / count.max(1) as f64,
                steady_p99_ms: steady.iter().sum::<f64>() / steady.len().max(1) as f64,
            };
            (p, result)
        })
        .collect()
}

#[test]
fn turmoil_and_the_event_driven_core_agree_on_a_crash_scenario() {
    let cfg = SimConfig {
        network: sim::config::NetworkConfig {
            base_latency_us: 1000.0,
            jitter_mean_us: 150.0,
        },
        ..SimConfig::default()
    };
    let des = scenario(
        sim::DesNetwork::new(cfg.network, rng::stream(cfg.seed, Stream::Network)),
        cfg,
    );
    let nodes = deathstarbench::load("socialNetwork", &deathstarbench::Deployment::default())
        .unwrap()
        .services
        .len()
        + 1;
    let turmoil = TurmoilNetwork::new(
        nodes,
        cfg.seed,
        TICK,
        Duration::ZERO,
        Duration::from_micros(1),
    );
    let tur = scenario(turmoil, cfg);
    for ((path, d), (_, t)) in des.iter().zip(&tur) {
        println!(
            "{path}: error rate {:.4} (des) vs {:.4} (turmoil); steady P99 {:.2} vs {:.2} ms",
            d.error_rate, t.error_rate, d.steady_p99_ms, t.steady_p99_ms
        );
        assert!(
            d.error_rate > 0.05,
            "{path}: the crash shows: {}",
            d.error_rate
        );
        assert!(
            (d.error_rate - t.error_rate).abs() < 0.02,
            "{path}: error rates differ"
        );
        let rel = (d.steady_p99_ms - t.steady_p99_ms).abs() / d.steady_p99_ms;
        assert!(rel < 0.25, "{path}: P99 differs by {:.0}%", rel * 100.0);
    }
}
