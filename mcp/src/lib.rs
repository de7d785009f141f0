//! External agents ("bring your own agent"): one incident of the online experiment served as a
//! Model Context Protocol server, every exchange recorded on a cassette, replays of cassettes,
//! and the same gateway for the evaluation's external agents.
//!
//! The crate owns
//! * the tool catalogue and what each read-only tool answers ([`tools`]) — monitoring's view
//!   only, never ground truth or cause tags;
//! * the session: an external agent as a [`agents::Policy`] that the online runner drives tick
//!   by tick, pausing the simulation while the agent thinks and pricing each tool call in
//!   virtual time ([`session`]);
//! * the MCP server on the official Rust SDK, rmcp, with a guard that bounds every incoming
//!   message ([`server`]), and the call sources behind a session: a live agent or a cassette
//!   ([`source`], [`cassette`]);
//! * [`run_incident`]: one incident with an agent on stdio, an agent process, or a cassette;
//! * [`eval::McpRunner`]: the evaluation's external agents (`[agents.NAME]`), one process per
//!   incident.
//!
//! Typed mode offers `propose_plan`, whose plans go through the kernel like the built-in
//! constrained agent's; raw mode offers `kubectl`, whose commands go straight to the raw
//! actuator like the unconstrained agent's. No other path reaches actuation.

pub mod bench;
pub mod cassette;
pub mod eval;
pub mod server;
pub mod session;
pub mod source;
pub mod tools;

pub use cassette::{Cassette, Header};
pub use session::{Clock, ExternalAgent, SessionConfig};
pub use tools::Mode;

use experiments::online::{OnlineRun, RunError, RunSpec, run_with};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the agent is.
pub enum Endpoint {
    /// On this process's stdin/stdout (the agent started `microreboot mcp`).
    Stdio,
    /// A process to start; it speaks MCP as a client on its own stdin/stdout.
    Command(Vec<String>),
    /// Nowhere: the calls come from a cassette.
    Replay(Cassette),
}

/// Limits on a live agent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Wall-clock time the agent has for the incident, from its first awaited call.
    pub timeout: Option<Duration>,
    /// Largest message it may send.
    pub max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: None,
            max_message_bytes: server::DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// A run with an external agent, and its cassette.
pub struct AgentRun {
    /// The run.
    pub run: OnlineRun,
    /// Every exchange, and how the session ended.
    pub cassette: Cassette,
}

impl AgentRun {
    /// The agent failure that ended the session, if any.
    pub fn agent_failure(&self) -> Option<&str> {
        self.cassette
            .closed
            .as_ref()
            .filter(|c| c.agent_failure)
            .map(|c| c.reason.as_str())
    }
}

/// Runs `spec` with the agent at `endpoint`, recording into a cassette that starts with
/// `header`. `spec.policy` labels the run and picks the kernel's guards (use `constrained`).
pub fn run_incident(
    spec: &RunSpec<'_>,
    session: SessionConfig,
    header: Header,
    endpoint: Endpoint,
    limits: Limits,
) -> Result<AgentRun, RunError> {
    let cassette = Arc::new(Mutex::new(Cassette::new(header)));
    let (source, server): (Box<dyn session::CallSource>, Option<ServerThread>) = match endpoint {
        Endpoint::Replay(c) => (Box::new(source::Replay::new(c)), None),
        live => {
            let (tx, rx) = std::sync::mpsc::channel();
            let breakage: source::Breakage = Arc::new(Mutex::new(None));
            let gateway = server::Gateway::new(&session, tx);
            let thread = ServerThread::start(live, gateway, breakage.clone(), limits);
            (
                Box::new(source::Link::new(rx, breakage, limits.timeout)),
                Some(thread),
            )
        }
    };
    let agent = ExternalAgent::new(session, source, cassette.clone());
    let result = run_with(spec, Box::new(agent));
    if let Some(s) = server {
        s.stop();
    }
    let run = result?;
    let cassette = cassette.lock().expect("cassette lock").clone();
    Ok(AgentRun { run, cassette })
}

/// The MCP server's thread, with its async runtime.
struct ServerThread {
    stop: tokio::sync::oneshot::Sender<()>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    fn start(
        endpoint: Endpoint,
        gateway: server::Gateway,
        breakage: source::Breakage,
        limits: Limits,
    ) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let stdio = matches!(endpoint, Endpoint::Stdio);
        let handle = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    *breakage.lock().expect("breakage lock") =
                        Some(format!("starting the MCP server: {e}"));
                    return;
                }
            };
            let max = limits.max_message_bytes;
            rt.block_on(async move {
                match endpoint {
                    Endpoint::Stdio => {
                        tokio::select! {
                            _ = server::serve(gateway, tokio::io::stdin(), tokio::io::stdout(), breakage, max) => {}
                            _ = stopped => {}
                        }
                    }
                    Endpoint::Command(argv) => {
                        let Some((program, args)) = argv.split_first() else {
                            *breakage.lock().expect("breakage lock") =
                                Some("the agent's command line is empty".into());
                            return;
                        };
                        let child = tokio::process::Command::new(program)
                            .args(args)
                            .stdin(std::process::Stdio::piped())
                            .stdout(std::process::Stdio::piped())
                            .stderr(std::process::Stdio::inherit())
                            .kill_on_drop(true)
                            .spawn();
                        let mut child = match child {
                            Ok(c) => c,
                            Err(e) => {
                                *breakage.lock().expect("breakage lock") =
                                    Some(format!("starting the agent `{program}`: {e}"));
                                return;
                            }
                        };
                        let (Some(out), Some(inp)) = (child.stdout.take(), child.stdin.take())
                        else {
                            return;
                        };
                        tokio::select! {
                            _ = server::serve(gateway, out, inp, breakage, max) => {}
                            _ = stopped => {}
                        }
                        let _ = child.kill().await;
                    }
                    Endpoint::Replay(_) => {}
                }
            });
        });
        ServerThread {
            stop,
            // Reading stdin blocks a thread that nothing can wake: leave it to process exit.
            handle: (!stdio).then_some(handle),
        }
    }

    fn stop(mut self) {
        let _ = self.stop.send(());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// What `microreboot mcp` writes as `result.json`: how the session went and the harm and TTR
/// oracles' verdicts (ground truth is on the record here, after the run; the agent never saw it).
pub fn result_json(
    agent_run: &AgentRun,
    judgement: &experiments::online::Judgement,
) -> serde_json::Value {
    let c = &agent_run.cassette;
    serde_json::json!({
        "app": c.header.app,
        "seed": c.header.seed,
        "mode": c.header.mode,
        "clock": c.header.clock,
        "tool_call_s": c.header.tool_call_s,
        "exchanges": c.exchanges.len(),
        "session_end": c.closed,
        "agent_failure": agent_run.agent_failure(),
        "incidents": agent_run.run.incidents,
        "judgement": judgement,
    })
}
