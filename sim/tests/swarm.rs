//! Swarm testing of the simulator: random applications (services, call trees, replicas), random
//! fault schedules and random control-action sequences, all drawn from one seed per case, run
//! with the invariant checker every few events. At the end every fault is retracted, nothing a
//! fault did may remain in force, and once arrivals stop every request must end.
//!
//! On failure the case prints a one-line repro command (`SWARM_SEED=… cargo test …`) and the
//! options drawn from the seed. Cases come from a fixed proptest seed; set `PROPTEST_RNG_SEED` or
//! `PROPTEST_CASES` to explore others.

use faults::{CrashMode, FaultInjector, FaultKind, FaultSchedule, FaultSpec, ReplicaPick};
use kernel::{EdgeKind, ServiceKind, VirtualTime};
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::config::{Probes, Retries, Timeouts};
use sim::rng::{self, Stream};
use sim::spec::{
    AppSpec, CacheSpec, CallNode, Condition, EdgeSpec, PathSpec, ServiceSpec, ServiceTime,
};
use sim::{Cause, Sim, SimConfig};
use std::collections::BTreeSet;

/// A control action the swarm takes.
#[derive(Clone, Debug)]
enum Action {
    Restart(usize, Vec<u32>),
    Kill(usize, Vec<u32>),
    Hang(usize, Vec<u32>),
    Recover(usize, Vec<u32>),
    Drain(usize, BTreeSet<u32>),
    Breaker(usize, usize, bool),
    RateLimit(usize, Option<f64>),
    Scale(usize, u32),
    Config(usize, String),
    Slowdown(usize, Vec<u32>, f64),
    Delay(usize, Vec<u32>, u64),
    Partition(usize, Vec<u32>, usize, bool),
    Arrivals(bool),
}

/// Everything one case drew from its seed.
#[derive(Clone, Debug)]
struct World {
    spec: AppSpec,
    cfg: SimConfig,
    faults: Vec<FaultSpec>,
    actions: Vec<(f64, Action)>,
    horizon_s: f64,
}

impl World {
    /// The drawn options on one line.
    fn summary(&self) -> String {
        let services: Vec<String> = self
            .spec
            .services
            .iter()
            .map(|s| format!("{}x{}c{}w{}", s.name, s.replicas, s.cores, s.max_inflight))
            .collect();
        let edges: Vec<String> = self
            .spec
            .edges
            .iter()
            .map(|e| format!("{}>{}", e.from, e.to))
            .collect();
        let faults: Vec<String> = self.faults.iter().map(|f| f.to_string()).collect();
        let actions: Vec<String> = self
            .actions
            .iter()
            .map(|(t, a)| format!("{t:.2}s {a:?}"))
            .collect();
        format!(
            "services [{}] edges [{}] paths {} rate {:.0} check every {:?} horizon {:.1}s faults [{}] actions [{}]",
            services.join(" "),
            edges.join(" "),
            self.spec.paths.len(),
            self.cfg.rate_rps,
            self.cfg.check_invariants_every,
            self.horizon_s,
            faults.join("; "),
            actions.join("; "),
        )
    }
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, xs: &[T]) -> T {
    xs[rng.random_range(0..xs.len())]
}

fn some_replicas(rng: &mut ChaCha8Rng, n: u32) -> Vec<u32> {
    (0..n).filter(|_| rng.random_bool(0.5)).collect()
}

/// Draws a world from `seed`.
fn draw(seed: u64) -> World {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = rng.random_range(2..=6usize);
    let services: Vec<ServiceSpec> = (0..n)
        .map(|i| {
            let kind = if i == 0 {
                ServiceKind::Frontend
            } else {
                pick(
                    &mut rng,
                    &[ServiceKind::Stateless, ServiceKind::Cache, ServiceKind::Db],
                )
            };
            let replicas = rng.random_range(1..=3);
            ServiceSpec {
                name: format!("s{i}"),
                kind,
                replicas,
                min_replicas: 1,
                max_replicas: 4,
                cores: rng.random_range(1..=4),
                max_inflight: rng.random_range(2..=48),
                service_time: ServiceTime {
                    median_us: rng.random_range(100.0..4000.0),
                    sigma: rng.random_range(0.0..0.8),
                },
                startup_s: rng.random_range(0.0..2.0),
                cache: (kind == ServiceKind::Cache).then(|| CacheSpec {
                    hit_ratio: rng.random_range(0.0..1.0),
                    warmup_s: rng.random_range(0.1..5.0),
                }),
                startup_deps: Vec::new(),
                config_versions: (1..=rng.random_range(1..=2))
                    .map(|v| format!("v{v}"))
                    .collect(),
            }
        })
        .collect();
    // A DAG over increasing indices: every service below the frontend has a caller.
    let mut edges = Vec::new();
    for to in 1..n {
        let from = rng.random_range(0..to);
        edges.push((from, to));
        for extra in 0..to {
            if extra != from && rng.random_bool(0.2) {
                edges.push((extra, to));
            }
        }
    }
    edges.sort_unstable();
    let edge_specs: Vec<EdgeSpec> = edges
        .iter()
        .map(|&(from, to)| EdgeSpec {
            from,
            to,
            kind: match services[to].kind {
                ServiceKind::Cache => EdgeKind::Cache,
                ServiceKind::Db => EdgeKind::Db,
                _ => EdgeKind::Rpc,
            },
        })
        .collect();
    let paths = (0..rng.random_range(1..=3))
        .map(|p| {
            let mut nodes = Vec::new();
            grow(&mut rng, &edges, 0, Condition::Always, 0, &mut nodes);
            PathSpec {
                name: format!("p{p}"),
                weight: rng.random_range(0.1..1.0),
                nodes,
            }
        })
        .collect();
    let spec = AppSpec {
        name: format!("swarm-{seed:#x}"),
        services,
        edges: edge_specs,
        paths,
    };
    let cfg = SimConfig {
        seed,
        rate_rps: rng.random_range(20.0..500.0),
        timeouts: Timeouts {
            rpc_ms: rng.random_range(50..1000),
            cache_ms: rng.random_range(20..300),
            db_ms: rng.random_range(50..1000),
            client_ms: rng.random_range(500..3000),
        },
        retries: Retries {
            max_retries: rng.random_range(0..=3),
            backoff_base_ms: rng.random_range(1.0..50.0),
            budget_ratio: rng.random_range(0.0..1.0),
            budget_cap: rng.random_range(0.0..20.0),
        },
        probes: Probes {
            period_s: rng.random_range(0.5..5.0),
            failure_threshold: rng.random_range(1..=3),
        },
        max_requests_in_flight: pick(&mut rng, &[20, 200, 200_000]),
        check_invariants_every: Some(pick(&mut rng, &[1, 3, 17, 64])),
        ..SimConfig::default()
    };
    let horizon_s = rng.random_range(3.0..12.0);
    let kinds = |rng: &mut ChaCha8Rng, target: usize| -> FaultKind {
        match rng.random_range(0..6) {
            0 => FaultKind::Crash {
                mode: CrashMode::Hang,
            },
            1 => FaultKind::Crash {
                mode: CrashMode::Kill,
            },
            2 => FaultKind::Latency {
                delay_ms: rng.random_range(1.0..400.0),
            },
            3 => FaultKind::Resource {
                cpu_factor: rng.random_range(1.5..10.0),
                leak: rng.random_bool(0.5),
            },
            4 => FaultKind::Partition {
                dependency: format!("s{}", rng.random_range(0..n.max(target + 1))),
            },
            _ => FaultKind::Misconfig {
                fail_fraction: rng.random_range(0.05..1.0),
            },
        }
    };
    let faults = (0..rng.random_range(0..=4))
        .map(|_| {
            let target = rng.random_range(0..n);
            let replicas = match rng.random_range(0..3) {
                0 => ReplicaPick::All,
                1 => ReplicaPick::One,
                _ => ReplicaPick::Ids(vec![0]),
            };
            FaultSpec {
                target: format!("s{target}"),
                replicas,
                start_s: rng.random_range(0.0..horizon_s),
                duration_s: rng.random_range(0.5..horizon_s),
                kind: kinds(&mut rng, target),
            }
        })
        .collect();
    let mut actions: Vec<(f64, Action)> = (0..rng.random_range(0..=10))
        .map(|_| {
            let at = rng.random_range(0.0..horizon_s);
            let s = rng.random_range(0..n);
            let reps = 4; // up to the most replicas a service can have
            let r = some_replicas(&mut rng, reps);
            let a = match rng.random_range(0..13) {
                0 => Action::Restart(s, r),
                1 => Action::Kill(s, r),
                2 => Action::Hang(s, r),
                3 => Action::Recover(s, r),
                4 => Action::Drain(s, r.into_iter().collect()),
                5 => Action::Breaker(s, rng.random_range(0..n), rng.random_bool(0.6)),
                6 => Action::RateLimit(
                    s,
                    rng.random_bool(0.7).then(|| rng.random_range(0.0..300.0)),
                ),
                7 => Action::Scale(s, rng.random_range(0..=4)),
                8 => Action::Config(s, pick(&mut rng, &["v1", "v2", "v9-unknown"]).to_string()),
                9 => Action::Slowdown(s, r, pick(&mut rng, &[1.0, 3.0])),
                10 => Action::Delay(s, r, pick(&mut rng, &[0, 20_000])),
                11 => Action::Partition(s, r, rng.random_range(0..n), rng.random_bool(0.6)),
                _ => Action::Arrivals(rng.random_bool(0.7)),
            };
            (at, a)
        })
        .collect();
    actions.sort_by(|a, b| a.0.total_cmp(&b.0));
    World {
        spec,
        cfg,
        faults,
        actions,
        horizon_s,
    }
}

/// Adds a call to `service` (and, recursively, what it calls) to `nodes`; returns its index.
fn grow(
    rng: &mut ChaCha8Rng,
    edges: &[(usize, usize)],
    service: usize,
    condition: Condition,
    depth: u32,
    nodes: &mut Vec<CallNode>,
) -> usize {
    let me = nodes.len();
    nodes.push(CallNode {
        service,
        op: format!("op{me}"),
        condition,
        stages: Vec::new(),
    });
    if depth >= 4 {
        return me;
    }
    let callees: Vec<usize> = edges
        .iter()
        .filter(|e| e.0 == service && rng.random_bool(0.7))
        .map(|e| e.1)
        .collect();
    let mut stages: Vec<Vec<usize>> = Vec::new();
    for (i, callee) in callees.into_iter().enumerate() {
        let condition = match rng.random_range(0..4) {
            0 if i > 0 => Condition::OnMiss,
            1 => Condition::Probability(rng.random_range(0.0..1.0)),
            _ => Condition::Always,
        };
        let child = grow(rng, edges, callee, condition, depth + 1, nodes);
        if stages.is_empty() || rng.random_bool(0.5) {
            stages.push(vec![child]);
        } else {
            stages.last_mut().expect("not empty").push(child);
        }
    }
    nodes[me].stages = stages;
    me
}

fn name(i: usize) -> String {
    format!("s{i}")
}

/// Applies `action`; a control call that names a replica a service no longer has is refused,
/// which is fine (the swarm does not know the current replica counts).
fn apply(sim: &mut Sim, action: &Action, cause: Cause) {
    let _ = match action {
        Action::Restart(s, r) => sim.restart(&name(*s), r, cause),
        Action::Kill(s, r) => sim.kill(&name(*s), r, cause),
        Action::Hang(s, r) => sim.hang(&name(*s), r, cause),
        Action::Recover(s, r) => sim.recover(&name(*s), r, cause),
        Action::Drain(s, r) => sim.set_drained(&name(*s), r, cause),
        Action::Breaker(a, b, open) => sim.set_breaker(&name(*a), &name(*b), *open, cause),
        Action::RateLimit(s, rps) => sim.set_rate_limit(&name(*s), *rps, cause),
        Action::Scale(s, n) => sim.set_replicas(&name(*s), *n, cause),
        Action::Config(s, v) => sim.set_config(&name(*s), v, cause),
        Action::Slowdown(s, r, f) => sim.set_slowdown(&name(*s), r, *f, None, cause),
        Action::Delay(s, r, d) => sim.set_net_delay(&name(*s), r, *d, cause),
        Action::Partition(s, r, d, on) => sim.set_partition(&name(*s), r, &name(*d), *on, cause),
        Action::Arrivals(on) => {
            sim.set_arrivals(*on);
            Ok(())
        }
    };
}

/// Runs the world; `Err` says what broke.
fn run(world: &World) -> Result<u64, String> {
    let mut sim = Sim::new(world.spec.clone(), world.cfg).map_err(|e| e.to_string())?;
    let schedule = FaultSchedule {
        faults: world.faults.clone(),
    };
    schedule.check(&sim)?;
    let mut faults = FaultInjector::new(schedule, rng::stream(world.cfg.seed, Stream::Faults));
    let horizon = VirtualTime((world.horizon_s * 1e6) as u64);
    let mut actions = world.actions.iter().enumerate().peekable();
    loop {
        faults.apply_due(&mut sim).map_err(|e| e.to_string())?;
        while let Some((i, (at, a))) = actions.peek()
            && VirtualTime((*at * 1e6) as u64) <= sim.now()
        {
            apply(&mut sim, a, Cause::Action(*i as u32 + 1));
            actions.next();
        }
        sim.check_invariants()
            .map_err(|v| format!("after control: {v}"))?;
        let next_action = actions
            .peek()
            .map(|(_, (at, _))| VirtualTime((*at * 1e6) as u64));
        let next = [faults.next_change(), next_action]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) if t < horizon => sim.run_until(t).map_err(|e| e.to_string())?,
            _ => break,
        }
    }
    sim.run_until(horizon).map_err(|e| e.to_string())?;
    faults.retract_all(&mut sim).map_err(|e| e.to_string())?;
    if !faults.all_retracted() {
        return Err("the injector left a fault unretracted".into());
    }
    let residue = sim.fault_residue();
    if !residue.is_empty() {
        return Err(format!(
            "faults still in force after retraction: {residue:?}"
        ));
    }
    // Drain: with arrivals off every request ends by its client timeout.
    sim.set_arrivals(false);
    let drain = VirtualTime::from_millis(world.cfg.timeouts.client_ms + 1000);
    sim.run_until(VirtualTime(sim.now().as_micros() + drain.as_micros()))
        .map_err(|e| e.to_string())?;
    sim.check_invariants().map_err(|v| v.to_string())?;
    if sim.requests_in_flight() != 0 {
        return Err(format!(
            "{} requests still in flight after arrivals stopped and every client timeout passed",
            sim.requests_in_flight()
        ));
    }
    Ok(sim.events_processed())
}

fn repro(seed: u64) -> String {
    format!("SWARM_SEED={seed:#x} cargo test -p sim --test swarm -- replay_swarm_seed --nocapture")
}

/// Runs one seed's world, failing with the repro line and the drawn options.
fn case(seed: u64) -> Result<u64, String> {
    let world = draw(seed);
    run(&world).map_err(|e| {
        let line = format!(
            "{e}\n  repro: {}\n  drawn: {}",
            repro(seed),
            world.summary()
        );
        eprintln!("swarm failure: {line}");
        line
    })
}

/// `cases` cases from a fixed RNG seed (the house style of `kernel/tests/common`); set
/// `PROPTEST_RNG_SEED` (or `PROPTEST_CASES`) to explore others.
fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    let env = proptest::test_runner::Config::default();
    proptest::test_runner::Config {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            env.cases
        } else {
            cases
        },
        rng_seed: match env.rng_seed {
            proptest::test_runner::RngSeed::Random => {
                proptest::test_runner::RngSeed::Fixed(0x0073_7761_726d)
            }
            fixed => fixed,
        },
        failure_persistence: None,
        // Every case is a whole world drawn from one seed: a smaller seed is a different world,
        // not a simpler one, so shrinking would only hide the failing case.
        max_shrink_iters: 0,
        ..env
    }
}

proptest! {
    #![proptest_config(proptest_config(200))]

    #[test]
    fn random_worlds_keep_every_invariant(seed in any::<u64>()) {
        if let Err(e) = case(seed) {
            return Err(TestCaseError::fail(e));
        }
    }
}

/// Replays one case: `SWARM_SEED=0x… cargo test -p sim --test swarm -- replay_swarm_seed`.
#[test]
fn replay_swarm_seed() {
    let Some(seed) = std::env::var("SWARM_SEED").ok() else {
        return;
    };
    let seed = match seed.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => seed.parse(),
    }
    .expect("SWARM_SEED is a number (decimal or 0x hex)");
    eprintln!("drawn: {}", draw(seed).summary());
    match case(seed) {
        Ok(events) => eprintln!("ok: {events} events"),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn the_same_seed_draws_the_same_world_and_run() {
    let a = draw(42);
    assert_eq!(a.summary(), draw(42).summary());
    assert_ne!(a.summary(), draw(43).summary());
    assert_eq!(case(42), case(42));
}
