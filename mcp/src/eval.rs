//! The evaluation's external agents: each incident of an `[agents.NAME]` policy runs the
//! agent's command as an MCP client against a fresh session ([`crate::run_incident`]), at most
//! `concurrency` of them at once per agent.

use crate::cassette::{FORMAT, Header};
use crate::session::{Clock, SessionConfig};
use crate::{Endpoint, Limits, run_incident};
use experiments::external::{AgentConfig, AgentRunner, ExternalRun};
use experiments::online::{RunError, RunSpec};
use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Runs external agents' incidents over MCP.
pub struct McpRunner {
    /// Virtual seconds a tool call costs for agents that do not set `tool_call_s`.
    default_tool_call_s: f64,
    /// Recorded in each session's cassette header.
    config_hash: String,
    /// Free slots per agent (its `concurrency`).
    slots: BTreeMap<String, Slots>,
}

/// A counting semaphore: how many more incidents of one agent may start.
struct Slots {
    free: Mutex<u32>,
    freed: Condvar,
}

impl Slots {
    fn acquire(&self) -> SlotGuard<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        SlotGuard(self)
    }
}

struct SlotGuard<'a>(&'a Slots);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

impl McpRunner {
    /// A runner for the agents of an evaluation whose configuration hashes to `config_hash`;
    /// `default_tool_call_s` prices tool calls of agents that do not set `tool_call_s` (the
    /// simulated LLM's re-plan latency, as `microreboot mcp` does).
    pub fn new(
        agents: &BTreeMap<String, AgentConfig>,
        default_tool_call_s: f64,
        config_hash: String,
    ) -> Self {
        McpRunner {
            default_tool_call_s,
            config_hash,
            slots: agents
                .iter()
                .map(|(name, a)| {
                    let slots = Slots {
                        free: Mutex::new(a.concurrency.max(1)),
                        freed: Condvar::new(),
                    };
                    (name.clone(), slots)
                })
                .collect(),
        }
    }
}

impl AgentRunner for McpRunner {
    fn run(
        &self,
        name: &str,
        agent: &AgentConfig,
        spec: &RunSpec<'_>,
    ) -> Result<ExternalRun, RunError> {
        let session = SessionConfig {
            mode: agent.mode,
            // Results must not depend on how fast the agent's process runs.
            clock: Clock::Virtual,
            tool_call_s: agent.tool_call_s.unwrap_or(self.default_tool_call_s),
        };
        let fault = spec.faults.faults.first();
        let header = Header {
            format: FORMAT.into(),
            app: spec.app.name.clone(),
            fault: fault.map_or(String::new(), |f| f.kind.fault_type().to_string()),
            target: fault.map(|f| f.target.clone()),
            seed: spec.seed,
            mode: agent.mode,
            clock: session.clock,
            tool_call_s: session.tool_call_s,
            config_hash: self.config_hash.clone(),
        };
        let limits = Limits {
            timeout: Some(Duration::from_secs_f64(agent.timeout_s)),
            max_message_bytes: agent
                .max_message_bytes
                .unwrap_or(crate::server::DEFAULT_MAX_MESSAGE_BYTES),
        };
        let _slot = self.slots.get(name).map(Slots::acquire);
        let run = run_incident(
            spec,
            session,
            header,
            Endpoint::Command(agent.command.clone()),
            limits,
        )?;
        Ok(ExternalRun {
            agent_failure: run.agent_failure().map(String::from),
            run: run.run,
        })
    }
}
