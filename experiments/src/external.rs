//! External agents in the evaluation: their `[agents.NAME]` declarations, and the seam through
//! which the matrix runs them.
//!
//! The matrix runs an external agent's incident exactly as a built-in policy's — same app,
//! seed and drawn scenario, same runner — but the agent lives in another process and speaks
//! MCP, which this crate knows nothing of: whoever runs the evaluation passes an
//! [`AgentRunner`] (the CLI's is built on the `agent-mcp` crate). An agent that crashes, hangs
//! past its timeout or sends malformed or oversized messages ends its incident as an *agent
//! failure*; the run itself completes and is judged like any other.

use crate::online::{OnlineRun, RunError, RunSpec};
use agents::{PolicyId, PolicyKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How an external agent actuates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Typed plans through the kernel (`propose_plan`).
    Typed,
    /// kubectl-like commands straight to the orchestrator (`kubectl`), unvalidated.
    Raw,
}

impl Mode {
    /// Its name in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Typed => "typed",
            Mode::Raw => "raw",
        }
    }

    /// The built-in policy whose runner setup (the kernel's guards) an agent in this mode gets:
    /// typed plans meet every guard, as `constrained`'s do; raw commands bypass the kernel, as
    /// `unconstrained`'s do.
    pub fn runs_as(self) -> PolicyKind {
        match self {
            Mode::Typed => PolicyKind::Constrained,
            Mode::Raw => PolicyKind::Unconstrained,
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "typed" => Ok(Mode::Typed),
            "raw" => Ok(Mode::Raw),
            other => Err(format!("unknown mode `{other}` (expected typed or raw)")),
        }
    }
}

/// One `[agents.NAME]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The agent's command line (program, then arguments); it speaks MCP as a client on its
    /// stdin/stdout. A relative program is looked up on `PATH`.
    pub command: Vec<String>,
    /// `typed` (plans through the kernel) or `raw` (kubectl-like commands, unvalidated).
    #[serde(default = "default_mode")]
    pub mode: Mode,
    /// Wall-clock seconds the agent has for one incident; past it, the incident is an agent
    /// failure.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: f64,
    /// How many of its incidents run at once (its processes, its API quota).
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Virtual seconds each tool call costs (one model turn); unset: the simulated LLM's
    /// `llm.replan_latency_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_s: Option<f64>,
    /// Largest message the agent may send, bytes; unset: the MCP server's default (1 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_bytes: Option<usize>,
}

fn default_mode() -> Mode {
    Mode::Typed
}
fn default_timeout_s() -> f64 {
    300.0
}
fn default_concurrency() -> u32 {
    1
}

impl AgentConfig {
    /// Checks the fields' values; errors name the field.
    fn check(&self) -> Result<(), String> {
        if self.command.is_empty() || self.command[0].trim().is_empty() {
            return Err("command: must name a program (a list: [\"program\", \"arg\", …])".into());
        }
        if !(self.timeout_s.is_finite() && self.timeout_s > 0.0 && self.timeout_s <= 86_400.0) {
            return Err(format!(
                "timeout_s = {}: must be a number of seconds in (0, 86400]",
                self.timeout_s
            ));
        }
        if self.concurrency == 0 {
            return Err("concurrency = 0: must be at least 1".into());
        }
        if let Some(s) = self.tool_call_s
            && !(s.is_finite() && (0.0..=3600.0).contains(&s))
        {
            return Err(format!(
                "tool_call_s = {s}: must be a number of seconds in [0, 3600]"
            ));
        }
        if self.max_message_bytes == Some(0) {
            return Err("max_message_bytes = 0: must be at least 1".into());
        }
        Ok(())
    }
}

/// Checks every declaration: its name (not a built-in's) and its fields.
pub fn check_agents(agents: &BTreeMap<String, AgentConfig>) -> Result<(), String> {
    for (name, agent) in agents {
        check_one(name, agent).map_err(|e| format!("[agents.{name}] {e}"))?;
    }
    Ok(())
}

fn check_one(name: &str, agent: &AgentConfig) -> Result<(), String> {
    if PolicyKind::from_name(name).is_some() {
        return Err(format!(
            "`{name}` is a built-in policy's name (built-in names win in `policies`); rename the agent"
        ));
    }
    PolicyId::check_external_name(name)?;
    agent.check()
}

/// Checks the `[agents.*]` tables of a TOML document where they are written, so that an error
/// names the file and line: `source:line: [agents.NAME] field: problem`.
pub fn check_agents_in(text: &str, source: &str) -> Result<(), String> {
    #[derive(Deserialize)]
    struct Agents {
        #[serde(default)]
        agents: BTreeMap<String, toml::Spanned<toml::Value>>,
    }
    let doc: Agents = toml::from_str(text).map_err(|e| format!("{source}: {e}"))?;
    for (name, value) in doc.agents {
        let line = text[..value.span().start].matches('\n').count() + 1;
        let agent: AgentConfig = value
            .into_inner()
            .try_into()
            .map_err(|e: toml::de::Error| format!("{source}:{line}: [agents.{name}] {e}"))?;
        check_one(&name, &agent).map_err(|e| format!("{source}:{line}: [agents.{name}] {e}"))?;
    }
    Ok(())
}

/// An external agent's run of one incident.
pub struct ExternalRun {
    /// The run, judged like any other.
    pub run: OnlineRun,
    /// Why the agent failed, if it did (crashed, timed out, sent a bad message).
    pub agent_failure: Option<String>,
}

/// Runs external agents' incidents.
pub trait AgentRunner: Sync {
    /// Runs `spec` (whose `policy` is [`Mode::runs_as`] of the agent's mode) with the agent
    /// `name` declared as `agent`. An agent's failure is an `Ok` run with
    /// [`ExternalRun::agent_failure`] set; `Err` is for the run itself failing.
    fn run(
        &self,
        name: &str,
        agent: &AgentConfig,
        spec: &RunSpec<'_>,
    ) -> Result<ExternalRun, RunError>;
}

/// The runner of an evaluation without external agents: it refuses them.
pub struct NoAgents;

impl AgentRunner for NoAgents {
    fn run(&self, name: &str, _: &AgentConfig, _: &RunSpec<'_>) -> Result<ExternalRun, RunError> {
        Err(RunError::new(
            format!("external agent `{name}`"),
            "this evaluation was started without an agent runner (use the `microreboot eval` CLI)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_agent_tables_are_refused_with_file_line_and_field() {
        for (toml, expected) in [
            (
                "[agents.a]\nmode = \"typed\"\n",
                "t.toml:1: [agents.a] missing field `command`",
            ),
            (
                "seed = 1\n\n[agents.a]\ncommand = []\n",
                "t.toml:3: [agents.a] command:",
            ),
            (
                "[agents.a]\ncommand = [\"x\"]\nmode = \"fast\"\n",
                "t.toml:1: [agents.a] unknown variant `fast`",
            ),
            (
                "[agents.a]\ncommand = [\"x\"]\ntimeout_s = 0.0\n",
                "timeout_s = 0",
            ),
            (
                "[agents.a]\ncommand = [\"x\"]\nconcurrency = 0\n",
                "concurrency = 0",
            ),
            (
                "[agents.a]\ncommand = [\"x\"]\nretries = 3\n",
                "unknown field `retries`",
            ),
            (
                "[agents.constrained]\ncommand = [\"x\"]\n",
                "built-in policy's name",
            ),
            ("[agents.My-Agent]\ncommand = [\"x\"]\n", "lower-case"),
        ] {
            let err = check_agents_in(toml, "t.toml").expect_err(toml);
            assert!(err.contains(expected), "{toml}: {err}");
        }
        check_agents_in(
            "[agents.mine]\ncommand = [\"python3\", \"agent.py\"]\n",
            "t.toml",
        )
        .unwrap();
    }
}
