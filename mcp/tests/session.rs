//! Sessions driven by scripted agents in-process: what an agent sees (never ground truth),
//! virtual time, replay, and hostile arguments.

mod common;

use agent_mcp::cassette::{Cassette, Exchange};
use agent_mcp::session::ExternalAgent;
use agent_mcp::source::Replay;
use agent_mcp::{Mode, SessionConfig};
use common::*;
use experiments::online::run_with;
use faults::FaultType;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// Runs a scripted agent; returns the cassette.
fn run_script(
    app_name: &str,
    fault: FaultType,
    seed: u64,
    mode: Mode,
    cfg: SessionConfig,
    script: impl FnMut(&[Exchange]) -> Option<(String, Value)> + Send + 'static,
) -> Cassette {
    let app = app(app_name);
    let online = config();
    let cassette = Arc::new(Mutex::new(Cassette::new(header(
        app_name, fault, seed, mode,
    ))));
    let source = Scripted {
        next: script,
        seen: Arc::new(Mutex::new(Vec::new())),
    };
    let agent = ExternalAgent::new(cfg, Box::new(source), cassette.clone());
    run_with(&spec(&app, fault, &online, seed), Box::new(agent)).unwrap();
    cassette.lock().unwrap().clone()
}

/// Calls every read-only tool once, then waits until the run ends.
fn explorer(seen: &[Exchange]) -> Option<(String, Value)> {
    let calls = [
        ("incident", json!({})),
        ("metrics", json!({"from_s": 80, "to_s": 110})),
        ("replicas", json!({})),
        ("traces", json!({})),
        ("scope", json!({})),
        ("isa", json!({})),
    ];
    if let Some((t, a)) = calls.get(seen.len()) {
        return Some((t.to_string(), a.clone()));
    }
    if seen.len() == calls.len() {
        let symptom = json(&seen[0])["symptom"].as_str().unwrap().to_string();
        return Some(("graph".into(), json!({"service": symptom, "depth": 3})));
    }
    Some(("wait".into(), json!({"seconds": 30})))
}

#[test]
fn no_answer_reveals_the_fault_type_its_target_as_cause_or_a_cause_tag() {
    let forbidden_words = [
        "crash",
        "latency",
        "resource",
        "partition",
        "misconfig",
        "fault",
        "cause",
        "truth",
        "inject",
        "errors_fault",
        "errors_action",
        "clean",
    ];
    for app_name in ["socialNetwork", "hotelReservation"] {
        for fault in FaultType::ALL {
            let c = run_script(
                app_name,
                fault,
                1,
                Mode::Typed,
                session(Mode::Typed),
                explorer,
            );
            assert!(c.exchanges.len() >= 7, "{app_name}/{fault}: {c:?}");
            let app = app(app_name);
            let online = config();
            let target = spec(&app, fault, &online, 1).faults.faults[0]
                .target
                .clone();
            for x in &c.exchanges {
                let text = x.result.to_lowercase();
                for w in forbidden_words {
                    assert!(
                        !text.contains(w),
                        "{app_name}/{fault}: `{w}` in {} answer: {}",
                        x.tool,
                        x.result
                    );
                }
                // The target appears only where every service does: named, never singled out.
                let v = json(x);
                for key in ["target", "root_cause", "culprit", "faulty"] {
                    assert!(
                        !x.result.contains(&format!("\"{key}\"")),
                        "{key} in {}",
                        x.tool
                    );
                }
                if x.tool == "replicas" {
                    let names: Vec<&str> = v["services"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s["service"].as_str().unwrap())
                        .collect();
                    assert_eq!(
                        names.len(),
                        app.services.len(),
                        "every service listed, {target} among them"
                    );
                }
            }
        }
    }
}

#[test]
fn time_moves_only_with_calls_waits_and_plans() {
    let c = run_script(
        "socialNetwork",
        FaultType::Crash,
        1,
        Mode::Typed,
        session(Mode::Typed),
        explorer,
    );
    let t: Vec<f64> = c.exchanges.iter().map(|x| x.t_s).collect();
    // Each call costs 2 s of virtual time; a wait answers 30 s after its cost.
    for w in t.windows(2).take(6) {
        assert_eq!(w[1] - w[0], 2.0, "{t:?}");
    }
    let waits: Vec<&Exchange> = c.exchanges.iter().filter(|x| x.tool == "wait").collect();
    assert!(waits.len() >= 2);
    assert_eq!(
        json(waits[1])["now_s"].as_f64().unwrap() - json(waits[0])["now_s"].as_f64().unwrap(),
        32.0
    );
}

#[test]
fn a_crash_is_fixed_through_the_kernel_and_a_replay_is_byte_identical() {
    // Restart the first service with a replica that is not running, as probes show it.
    let restart = |seen: &[Exchange]| -> Option<(String, Value)> {
        match seen.len() {
            0 => Some(("incident".into(), json!({}))),
            1 => Some(("replicas".into(), json!({}))),
            2 => {
                let inc = json(&seen[0]);
                let services = json(&seen[1])["services"].as_array().unwrap().clone();
                let down = services
                    .iter()
                    .find(|s| {
                        s["replicas"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|r| r["state"] != "running")
                    })
                    .map(|s| s["service"].clone())
                    .unwrap_or(inc["symptom"].clone());
                // Drained first and restored after, as the kernel asks of a hub (R3).
                let plan = json!({"incident": inc["incident"], "stages": [
                    [{"drain": {"service": down, "replicas": "all"}}],
                    [{"restart": {"service": down, "replicas": "all"}}],
                    [{"restore_traffic": {"service": down}}],
                ]});
                Some(("propose_plan".into(), json!({"plan": plan})))
            }
            n if n < 14 && json(&seen[n - 1])["status"] != "resolved" => {
                Some(("wait".into(), json!({"seconds": 10})))
            }
            _ => Some(("resolve".into(), json!({"summary": "restarted"}))),
        }
    };
    let c = run_script(
        "socialNetwork",
        FaultType::Crash,
        1,
        Mode::Typed,
        session(Mode::Typed),
        restart,
    );
    let verdict = json(&c.exchanges[2]);
    assert_eq!(verdict["accepted"], true, "{verdict}");
    let last = c.exchanges.last().unwrap();
    assert_eq!(last.tool, "resolve");
    assert_eq!(json(last)["status"], "resolved", "{c:?}");
    assert!(!c.closed.as_ref().unwrap().agent_failure);

    // Replay: no agent, the same answers, the same bytes.
    let app = app("socialNetwork");
    let online = config();
    let replayed = Arc::new(Mutex::new(Cassette::new(c.header.clone())));
    let agent = ExternalAgent::new(
        session(Mode::Typed),
        Box::new(Replay::new(c.clone())),
        replayed.clone(),
    );
    run_with(&spec(&app, FaultType::Crash, &online, 1), Box::new(agent)).unwrap();
    assert_eq!(replayed.lock().unwrap().to_bytes(), c.to_bytes());

    // A replay against another seed diverges, and says where.
    let diverging = Arc::new(Mutex::new(Cassette::new(c.header.clone())));
    let agent = ExternalAgent::new(session(Mode::Typed), Box::new(Replay::new(c)), diverging);
    let err = run_with(&spec(&app, FaultType::Crash, &online, 2), Box::new(agent)).unwrap_err();
    assert!(
        err.to_string().contains("replay diverged at exchange"),
        "{err}"
    );
}

#[test]
fn hostile_arguments_get_clear_errors_and_the_session_goes_on() {
    let ten_thousand: Vec<Value> = (0..10_000)
        .map(|_| json!([{"restart": {"service": "media-service", "replicas": "all"}}]))
        .collect();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("no_such_tool", json!({}), "unknown tool `no_such_tool`"),
        (
            "kubectl",
            json!({"command": {"command": "restart", "service": "x"}}),
            "unknown tool `kubectl` in typed mode",
        ),
        (
            "incident",
            json!({"verbose": true}),
            "unknown field `verbose`",
        ),
        (
            "metrics",
            json!({"from_s": -5, "to_s": 10}),
            "finite, non-negative",
        ),
        (
            "metrics",
            json!({"from_s": 0, "to_s": 1e300}),
            "at most 120 s",
        ),
        ("wait", json!({"seconds": -1}), "finite, non-negative"),
        ("wait", json!({"seconds": 1e12}), "between 1 and 300"),
        (
            "graph",
            json!({"service": "nope"}),
            "unknown service `nope`",
        ),
        (
            "graph",
            json!({"service": "media-service", "depth": 99}),
            "`depth` must be 1 to 3",
        ),
        (
            "propose_plan",
            json!({"plan": {"incident": "inc-1", "stages": ten_thousand}}),
            "propose_plan",
        ),
        (
            "propose_plan",
            json!({"plan": {"incident": "inc-1", "stages": []}, "x": 1}),
            "exactly one argument",
        ),
        (
            "propose_plan",
            json!({"plan": {"incident": "inc-1", "stages": [[{"rate_limit": {"service": "media-service", "rps": -3.0}}]]}}),
            "propose_plan",
        ),
        (
            "escalate",
            json!({"reason": "x".repeat(5000)}),
            "more than 4096",
        ),
    ];
    let n = cases.len();
    let calls: Vec<(String, Value)> = cases
        .iter()
        .map(|(t, a, _)| (t.to_string(), a.clone()))
        .collect();
    let c = run_script(
        "socialNetwork",
        FaultType::Crash,
        1,
        Mode::Typed,
        session(Mode::Typed),
        move |seen| {
            calls
                .get(seen.len())
                .cloned()
                .or(Some(("resolve".into(), json!({}))))
        },
    );
    for (x, (tool, _, message)) in c.exchanges.iter().zip(&cases) {
        assert!(
            x.is_error || x.tool == "propose_plan",
            "{tool}: {}",
            x.result
        );
        assert!(
            x.result.contains(message),
            "{tool}: `{message}` not in {}",
            x.result
        );
    }
    // The 10,000-step plan and the negative rate limit are refused before the kernel, or by it.
    assert_eq!(c.exchanges[n].tool, "resolve");
    assert!(!c.closed.unwrap().agent_failure);
}

#[test]
fn raw_mode_commands_reach_the_orchestrator_unvalidated() {
    let c = run_script(
        "socialNetwork",
        FaultType::Crash,
        1,
        Mode::Raw,
        session(Mode::Raw),
        |seen| match seen.len() {
            0 => Some(("incident".into(), json!({}))),
            1 => Some((
                "kubectl".into(),
                json!({"command": {"command": "restart", "service": json(&seen[0])["symptom"]}}),
            )),
            2 => Some((
                "kubectl".into(),
                json!({"command": {"command": "restart", "service": "x", "force": true}}),
            )),
            3 => Some(("propose_plan".into(), json!({"plan": {}}))),
            _ => Some(("wait".into(), json!({"seconds": 30}))),
        },
    );
    assert!(
        json(&c.exchanges[1])["queued"]
            .as_str()
            .unwrap()
            .starts_with("kubectl delete pods")
    );
    assert!(c.exchanges[2].is_error && c.exchanges[2].result.contains("unknown fields"));
    assert!(c.exchanges[3].is_error && c.exchanges[3].result.contains("in raw mode"));
}

#[test]
fn an_agent_that_leaves_mid_incident_is_an_agent_failure() {
    let c = run_script(
        "socialNetwork",
        FaultType::Crash,
        1,
        Mode::Typed,
        session(Mode::Typed),
        |seen| (seen.is_empty()).then(|| ("incident".into(), json!({}))),
    );
    let closed = c.closed.unwrap();
    assert!(closed.agent_failure, "{closed:?}");
    assert!(closed.reason.contains("closed the connection"));
}
