//! Shared fixtures: a short online run and a scripted agent.

#![allow(dead_code)]

use agent_mcp::cassette::{Exchange, FORMAT};
use agent_mcp::session::{Call, CallSource, Ended};
use agent_mcp::{Clock, Header, Mode, SessionConfig};
use agents::{LlmConfig, PolicyKind};
use experiments::online::{Detection, Execution, OnlineConfig, RunSpec};
use faults::FaultType;
use serde_json::{Map, Value};
use sim::spec::AppSpec;
use std::sync::{Arc, Mutex};

pub fn app(name: &str) -> AppSpec {
    deathstarbench::load(name, &deathstarbench::Deployment::default()).unwrap()
}

/// A short run: the fault at 90 s, the incident about 10 s later, 200 s in all.
pub fn config() -> OnlineConfig {
    OnlineConfig {
        run_s: 200.0,
        ..OnlineConfig::default()
    }
}

pub fn spec<'a>(
    app: &'a AppSpec,
    fault: FaultType,
    cfg: &'a OnlineConfig,
    seed: u64,
) -> RunSpec<'a> {
    let f = deathstarbench::fault_for(app, fault, None, cfg.fault_start_s, cfg.fault_duration_s)
        .unwrap()
        .spec;
    RunSpec {
        app,
        faults: faults::FaultSchedule { faults: vec![f] },
        policy: PolicyKind::Constrained,
        seed,
        llm: LlmConfig::default(),
        config: cfg,
        detection: Detection::Monitoring,
        execution: Execution::Parallel,
    }
}

pub fn session(mode: Mode) -> SessionConfig {
    SessionConfig {
        mode,
        clock: Clock::Virtual,
        tool_call_s: 2.0,
    }
}

pub fn header(app: &str, fault: FaultType, seed: u64, mode: Mode) -> Header {
    Header {
        format: FORMAT.into(),
        app: app.into(),
        fault: fault.to_string(),
        target: None,
        seed,
        mode,
        clock: Clock::Virtual,
        tool_call_s: 2.0,
        config_hash: "test".into(),
    }
}

/// The answer to a call, as the script's callback sees it.
pub type Seen = Arc<Mutex<Vec<Exchange>>>;

/// An agent that is a function of the answers so far: it returns the next call, or `None` to
/// leave (closing the connection).
pub struct Scripted<F> {
    pub next: F,
    pub seen: Seen,
}

impl<F: FnMut(&[Exchange]) -> Option<(String, Value)> + Send> CallSource for Scripted<F> {
    fn next(&mut self) -> Result<Call, Ended> {
        let seen = self.seen.lock().unwrap().clone();
        match (self.next)(&seen) {
            Some((tool, args)) => Ok(Call {
                tool,
                arguments: match args {
                    Value::Object(m) => m,
                    _ => Map::new(),
                },
                wall_s: 0.0,
            }),
            None => Err(Ended {
                reason: "the agent closed the connection".into(),
                agent_failure: true,
            }),
        }
    }

    fn answer(&mut self, exchange: &Exchange) {
        self.seen.lock().unwrap().push(exchange.clone());
    }
}

/// The JSON answer of an exchange.
pub fn json(x: &Exchange) -> Value {
    serde_json::from_str(&x.result).unwrap_or(Value::Null)
}
