//! Hostile agents over the real MCP transport (an agent process speaking JSON-RPC on its pipes):
//! each ends its incident as an agent failure with a clear reason, and the run completes.

mod common;

use agent_mcp::{Endpoint, Limits, Mode, run_incident};
use common::*;
use faults::FaultType;
use std::io::Write;
use std::time::Duration;

const HANDSHAKE: &str = concat!(
    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"hostile","version":"0"}}}"#,
    "\n",
    r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    "\n",
    r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"incident","arguments":{}}}"#,
    "\n",
);

/// Runs an agent that sends `lines` then does `then` (a shell command); returns the session's
/// end.
fn hostile(lines: &[u8], then: &str, timeout: Option<Duration>) -> agent_mcp::cassette::Closed {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messages");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(HANDSHAKE.as_bytes()).unwrap();
    f.write_all(lines).unwrap();
    drop(f);
    let script = format!("cat '{}'; {then}", path.display());
    let app = app("socialNetwork");
    let cfg = config();
    let limits = Limits {
        timeout,
        ..Limits::default()
    };
    let run = run_incident(
        &spec(&app, FaultType::Crash, &cfg, 1),
        session(Mode::Typed),
        header("socialNetwork", FaultType::Crash, 1, Mode::Typed),
        Endpoint::Command(vec!["sh".into(), "-c".into(), script]),
        limits,
    )
    .expect("the run completes whatever the agent does");
    assert!(!run.run.rows.is_empty());
    run.cassette.closed.expect("the session is closed")
}

#[test]
fn a_ten_megabyte_message() {
    let mut line = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"incident","arguments":{"x":""#.to_vec();
    line.extend(std::iter::repeat_n(b'x', 10 << 20));
    line.extend(b"\"}}}\n");
    let closed = hostile(&line, "sleep 30", None);
    assert!(closed.agent_failure);
    assert!(
        closed.reason.contains("over 1048576 bytes"),
        "{}",
        closed.reason
    );
}

#[test]
fn deeply_nested_json() {
    let line = format!("{}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let closed = hostile(line.as_bytes(), "sleep 30", None);
    assert!(closed.agent_failure);
    assert!(
        closed.reason.contains("recursion limit"),
        "{}",
        closed.reason
    );
}

#[test]
fn a_malformed_message() {
    let closed = hostile(b"{\"jsonrpc\": \"2.0\", oops\n", "sleep 30", None);
    assert!(closed.agent_failure);
    assert!(
        closed.reason.contains("malformed message"),
        "{}",
        closed.reason
    );
}

#[test]
fn an_agent_that_exits_mid_incident() {
    let closed = hostile(b"", "exit 3", None);
    assert!(closed.agent_failure);
    assert!(
        closed.reason.contains("closed the connection"),
        "{}",
        closed.reason
    );
}

#[test]
fn an_agent_that_never_answers() {
    let closed = hostile(b"", "sleep 60", Some(Duration::from_secs(2)));
    assert!(closed.agent_failure);
    assert!(
        closed.reason.contains("timeout of 2 s"),
        "{}",
        closed.reason
    );
}

#[test]
fn an_agent_that_cannot_start() {
    let app = app("socialNetwork");
    let cfg = config();
    let run = run_incident(
        &spec(&app, FaultType::Crash, &cfg, 1),
        session(Mode::Typed),
        header("socialNetwork", FaultType::Crash, 1, Mode::Typed),
        Endpoint::Command(vec!["/nonexistent/agent".into()]),
        Limits::default(),
    )
    .unwrap();
    let closed = run.cassette.closed.unwrap();
    assert!(closed.agent_failure);
    assert!(
        closed
            .reason
            .contains("starting the agent `/nonexistent/agent`"),
        "{}",
        closed.reason
    );
}
