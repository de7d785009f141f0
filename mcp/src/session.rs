//! The simulator's side of an external agent: a [`Policy`] that serves the agent's tool calls
//! while the simulation is paused, and turns `propose_plan`, `kubectl`, `escalate` into the
//! runner's proposals.
//!
//! Time: the runner calls [`Policy::observe`] once per control tick (1 s of virtual time). While
//! the agent is ready, `observe` blocks on its next call and answers it from that tick's
//! observation; the simulation does not move meanwhile. Each call costs `tool_call_s` virtual
//! seconds (one model turn; with `clock = wall`, the agent's measured wall time since the last
//! answer instead, marked in the cassette); once a second or more is owed, `observe` returns and
//! the next call is served that much later. `wait` answers after the virtual seconds asked for,
//! `propose_plan` on the tick the kernel's verdict arrives. So results depend on the sequence of
//! calls only, never on how fast the agent's process runs (with the default virtual clock).
//!
//! One session serves one incident: the first one monitoring opens. A session ends when the
//! agent calls `resolve`, when the run ends, or when the agent fails — exits, exceeds its
//! wall-clock timeout, sends a malformed or oversized message — which is recorded as an *agent
//! failure* with its reason; the incident then goes on without the agent.

use crate::cassette::{Cassette, Closed, Exchange};
use crate::tools::{self, Context, Mode, TextArgs, ToolError, WaitArgs};
use agents::{IncidentInfo, Observation, Policy, PolicyKind, Proposal};
use kernel::isa::Plan;
use kernel::{Verdict, VirtualTime};
use serde_json::{Map, Value, json};
use sim::actuator::RawCommand;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which clock prices the agent's decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// Every tool call costs `tool_call_s` virtual seconds (the default; deterministic).
    Virtual,
    /// Every tool call costs the wall time the agent took to send it (not reproducible; marked
    /// in every result it touches).
    Wall,
}

impl Clock {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Clock::Virtual => "virtual",
            Clock::Wall => "wall",
        }
    }
}

/// How a session prices and bounds the agent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SessionConfig {
    /// Typed plans or raw commands.
    pub mode: Mode,
    /// Virtual or wall clock.
    pub clock: Clock,
    /// Virtual seconds one tool call (one model turn) costs with the virtual clock.
    pub tool_call_s: f64,
}

/// One tool call as the agent made it.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// Tool name.
    pub tool: String,
    /// Arguments.
    pub arguments: Map<String, Value>,
    /// Wall seconds since the previous answer (what `clock = wall` charges), or the recorded
    /// cost when replaying.
    pub wall_s: f64,
}

/// How a call source ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Ended {
    /// Why.
    pub reason: String,
    /// Whether the agent failed (rather than closing after its work was done).
    pub agent_failure: bool,
}

/// Where an agent's calls come from: a live agent over MCP, or a cassette.
pub trait CallSource: Send {
    /// The agent's next call; blocks until it comes or the agent is gone.
    fn next(&mut self) -> Result<Call, Ended>;
    /// The answer to the last call, as recorded.
    fn answer(&mut self, exchange: &Exchange);
    /// Replay only: the run diverged from the recording.
    fn diverged(&self) -> Option<String> {
        None
    }
    /// Whether each call's cost comes from the source (a replayed cassette) rather than the
    /// clock.
    fn recorded_costs(&self) -> bool {
        false
    }
}

enum Pending {
    Wait,
    Verdict,
}

/// An external agent as a policy.
pub struct ExternalAgent {
    cfg: SessionConfig,
    source: Option<Box<dyn CallSource>>,
    cassette: Arc<Mutex<Cassette>>,
    incident: Option<IncidentInfo>,
    ready_at: VirtualTime,
    owed: Duration,
    pending: Option<(Call, f64, Pending)>,
    verdicts: VecDeque<Verdict>,
    escalated: bool,
    last_now: VirtualTime,
}

impl ExternalAgent {
    /// A session over `source`, recording into `cassette`.
    pub fn new(
        cfg: SessionConfig,
        source: Box<dyn CallSource>,
        cassette: Arc<Mutex<Cassette>>,
    ) -> Self {
        ExternalAgent {
            cfg,
            source: Some(source),
            cassette,
            incident: None,
            ready_at: VirtualTime::ZERO,
            owed: Duration::ZERO,
            pending: None,
            verdicts: VecDeque::new(),
            escalated: false,
            last_now: VirtualTime::ZERO,
        }
    }

    fn cost_of(&self, call: &Call) -> f64 {
        let recorded = self.source.as_ref().is_some_and(|s| s.recorded_costs());
        if recorded || self.cfg.clock == Clock::Wall {
            call.wall_s
        } else {
            self.cfg.tool_call_s
        }
    }

    fn record(
        &mut self,
        now: VirtualTime,
        call: Call,
        cost_s: f64,
        reply: Result<Value, ToolError>,
    ) {
        let (is_error, result) = match reply {
            Ok(v) => (false, v.to_string()),
            Err(e) => (true, e.0),
        };
        let mut cassette = self.cassette.lock().expect("cassette lock");
        let exchange = Exchange {
            n: cassette.exchanges.len() as u64 + 1,
            t_s: now.as_secs_f64(),
            tool: call.tool,
            arguments: call.arguments,
            cost_s,
            is_error,
            result,
        };
        if let Some(source) = self.source.as_mut() {
            source.answer(&exchange);
        }
        cassette.exchanges.push(exchange);
    }

    fn close(&mut self, now: VirtualTime, reason: String, agent_failure: bool) {
        if agent_failure {
            tracing::warn!(t_us = now.as_micros(), %reason, "external agent failed");
        }
        self.source = None;
        let mut cassette = self.cassette.lock().expect("cassette lock");
        if cassette.closed.is_none() {
            cassette.closed = Some(Closed {
                t_s: now.as_secs_f64(),
                reason,
                agent_failure,
            });
        }
    }

    /// Settles a call waiting on time or a verdict; false when it must wait more.
    fn settle(&mut self, ctx: &Context<'_>) -> bool {
        let Some((call, cost, kind)) = self.pending.take() else {
            return true;
        };
        let reply = match kind {
            Pending::Wait => Ok(tools::incident_json(ctx)),
            Pending::Verdict => match self.verdicts.pop_front() {
                Some(v) => Ok(tools::verdict_json(&v)),
                None if !ctx.open => Err(ToolError(
                    "the incident was resolved before the plan reached the kernel; nothing executed"
                        .into(),
                )),
                None => {
                    self.pending = Some((call, cost, kind));
                    return false;
                }
            },
        };
        self.record(ctx.obs.now, call, cost, reply);
        true
    }
}

/// What one call asks the runner to do.
enum Step {
    Answer(Result<Value, ToolError>),
    Propose(Proposal),
    Wait(f64),
    Act(Proposal, Value),
    Resolve(Value),
}

fn handle(mode: Mode, call: &Call, ctx: &Context<'_>) -> Step {
    let args = &call.arguments;
    if let Some(answer) = tools::answer(&call.tool, args, ctx) {
        return Step::Answer(answer);
    }
    let number = ctx.incident.number;
    match (call.tool.as_str(), mode) {
        ("propose_plan", Mode::Typed) => match parse_plan(args) {
            Ok(plan) if ctx.open => Step::Propose(Proposal::Typed {
                incident: number,
                plan,
            }),
            Ok(_) => Step::Answer(Err(ToolError(
                "propose_plan: the incident is resolved; nothing to do".into(),
            ))),
            Err(e) => Step::Answer(Err(e)),
        },
        ("kubectl", Mode::Raw) => match parse_command(args) {
            Ok(command) => {
                let text = command.to_string();
                Step::Act(
                    Proposal::Raw {
                        incident: Some(number),
                        commands: vec![command],
                    },
                    json!({"queued": text, "note": "the orchestrator runs one command per control tick, unvalidated"}),
                )
            }
            Err(e) => Step::Answer(Err(e)),
        },
        ("wait", _) => match WaitArgs::parse(args) {
            Ok(s) => Step::Wait(s),
            Err(e) => Step::Answer(Err(e)),
        },
        ("escalate", _) => match TextArgs::parse("escalate", "reason", args) {
            Ok(reason) => Step::Act(
                Proposal::Escalate {
                    incident: number,
                    reason: format!("external agent: {reason}"),
                },
                json!({"escalated": true, "note": "a human operator takes over after the response delay"}),
            ),
            Err(e) => Step::Answer(Err(e)),
        },
        ("resolve", _) => match TextArgs::parse("resolve", "summary", args) {
            Ok(_) => Step::Resolve(tools::incident_json(ctx)),
            Err(e) => Step::Answer(Err(e)),
        },
        (other, _) => {
            let names: Vec<&str> = tools::catalogue(mode).iter().map(|t| t.name).collect();
            Step::Answer(Err(ToolError(format!(
                "unknown tool `{other}` in {} mode; tools: {}",
                mode.as_str(),
                names.join(", ")
            ))))
        }
    }
}

fn parse_plan(args: &Map<String, Value>) -> Result<Plan, ToolError> {
    let mut keys = args.keys();
    match (keys.next().map(String::as_str), keys.next()) {
        (Some("plan"), None) => {}
        _ => {
            return Err(ToolError(
                "propose_plan: expected exactly one argument, `plan`".into(),
            ));
        }
    }
    Plan::from_json_str(&args["plan"].to_string(), "propose_plan.plan")
        .map_err(|e| ToolError(format!("propose_plan: {e}")))
}

fn parse_command(args: &Map<String, Value>) -> Result<RawCommand, ToolError> {
    let mut keys = args.keys();
    let given = match (keys.next().map(String::as_str), keys.next()) {
        (Some("command"), None) => &args["command"],
        _ => {
            return Err(ToolError(
                "kubectl: expected exactly one argument, `command`".into(),
            ));
        }
    };
    let command: RawCommand = serde_json::from_value(given.clone())
        .map_err(|e| ToolError(format!("kubectl: bad command: {e}")))?;
    // Internally tagged enums ignore unknown fields; a command is taken only as written.
    if serde_json::to_value(&command).ok().as_ref() != Some(given) {
        return Err(ToolError(format!(
            "kubectl: unknown fields or wrong types in {given}; the command reads as {}",
            serde_json::to_value(&command).unwrap_or(Value::Null)
        )));
    }
    if let RawCommand::RateLimit { rps, .. } = &command
        && (!rps.is_finite() || *rps < 0.0)
    {
        return Err(ToolError(format!(
            "kubectl: `rps` must be finite and non-negative (got {rps})"
        )));
    }
    Ok(command)
}

impl Policy for ExternalAgent {
    // The nearest built-in by what the agent can express; the runner labels runs and picks the
    // kernel's guards by its `RunSpec::policy`, not by this.
    fn kind(&self) -> PolicyKind {
        self.cfg.mode.runs_as()
    }

    fn observe(&mut self, obs: &Observation<'_>) -> Vec<Proposal> {
        self.last_now = obs.now;
        let mut out = Vec::new();
        if self.incident.is_none() {
            self.incident = obs.incidents.first().cloned();
        }
        let Some(incident) = self.incident.clone() else {
            return out;
        };
        for (n, v) in obs.verdicts {
            if *n == incident.number {
                self.verdicts.push_back(v.clone());
            }
        }
        if self.source.is_none() || obs.now < self.ready_at {
            return out;
        }
        let ctx = Context {
            obs,
            incident: &incident,
            open: obs.incidents.iter().any(|i| i.number == incident.number),
        };
        if !self.settle(&ctx) {
            return out;
        }
        loop {
            if self.source.as_ref().and_then(|s| s.diverged()).is_some() {
                return out;
            }
            let Some(source) = self.source.as_mut() else {
                return out;
            };
            let call = match source.next() {
                Ok(call) => call,
                Err(end) => {
                    // Leaving after the work is done is no failure.
                    let failure = end.agent_failure && ctx.open && !self.escalated;
                    self.close(obs.now, end.reason, failure);
                    return out;
                }
            };
            let cost = self.cost_of(&call);
            self.owed += Duration::from_secs_f64(cost.max(0.0));
            match handle(self.cfg.mode, &call, &ctx) {
                Step::Answer(reply) => self.record(obs.now, call, cost, reply),
                Step::Act(proposal, reply) => {
                    if matches!(proposal, Proposal::Escalate { .. }) {
                        self.escalated = true;
                    }
                    out.push(proposal);
                    self.record(obs.now, call, cost, Ok(reply));
                }
                Step::Resolve(reply) => {
                    self.record(obs.now, call, cost, Ok(reply));
                    self.close(obs.now, "the agent declared its work done".into(), false);
                    return out;
                }
                Step::Propose(proposal) => {
                    out.push(proposal);
                    self.pending = Some((call, cost, Pending::Verdict));
                    self.ready_at = obs.now.saturating_add(std::mem::take(&mut self.owed));
                    return out;
                }
                Step::Wait(s) => {
                    self.pending = Some((call, cost, Pending::Wait));
                    let owed = std::mem::take(&mut self.owed);
                    self.ready_at = obs.now.saturating_add(owed + Duration::from_secs_f64(s));
                    return out;
                }
            }
            if self.owed >= Duration::from_secs(1) {
                self.ready_at = obs.now.saturating_add(std::mem::take(&mut self.owed));
                return out;
            }
        }
    }

    fn failure(&self) -> Option<String> {
        self.source.as_ref().and_then(|s| s.diverged())
    }
}

impl Drop for ExternalAgent {
    fn drop(&mut self) {
        // The run is over: answer a call still waiting, and close the session.
        let now = self.last_now;
        if let Some((call, cost, _)) = self.pending.take() {
            self.record(
                now,
                call,
                cost,
                Err(ToolError(format!(
                    "the run ended at {} s; the incident is no longer served",
                    now.as_secs_f64()
                ))),
            );
        }
        if self.source.is_some() {
            let reason = if self.incident.is_some() {
                "the run ended"
            } else {
                "the run ended before an incident opened"
            };
            self.close(now, reason.into(), false);
        }
    }
}
