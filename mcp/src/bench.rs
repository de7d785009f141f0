//! The protocol's cost per tool call, for `microreboot bench mcp`: a client's `tools/call`
//! round trip through the guard, rmcp, the channel to the session thread and back, with the
//! answer precomputed so that only the protocol is measured. Its peer in the same run is
//! building that answer directly, which is what an in-process policy pays.

use crate::server::{DEFAULT_MAX_MESSAGE_BYTES, Gateway, serve};
use crate::source::{Breakage, Request};
use crate::{Clock, Mode, SessionConfig, tools};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf};

/// A connected client and server in one process.
pub struct RoundTrip {
    rt: tokio::runtime::Runtime,
    write: WriteHalf<DuplexStream>,
    read: BufReader<ReadHalf<DuplexStream>>,
    id: u64,
    line: String,
}

/// The answer the responder gives every call: the `isa` tool's (about 1.5 KB).
pub fn answer_text() -> String {
    tools::isa_json().to_string()
}

impl RoundTrip {
    /// Starts the server and completes the MCP handshake.
    pub fn new() -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (client, server) = tokio::io::duplex(1 << 20);
        let (server_read, server_write) = tokio::io::split(server);
        let (client_read, client_write) = tokio::io::split(client);
        let (tx, rx) = std::sync::mpsc::channel::<Request>();
        let cfg = SessionConfig {
            mode: Mode::Typed,
            clock: Clock::Virtual,
            tool_call_s: 0.0,
        };
        let breakage: Breakage = Arc::new(Mutex::new(None));
        rt.spawn(serve(
            Gateway::new(&cfg, tx),
            server_read,
            server_write,
            breakage,
            DEFAULT_MAX_MESSAGE_BYTES,
        ));
        // The session's thread, answering at once.
        std::thread::spawn(move || {
            let text = answer_text();
            while let Ok(r) = rx.recv() {
                let _ = r.reply.send((false, text.clone()));
            }
        });
        let mut me = RoundTrip {
            rt,
            write: client_write,
            read: BufReader::new(client_read),
            id: 0,
            line: String::new(),
        };
        me.send(r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}"#)?;
        me.receive()?;
        me.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)?;
        Ok(me)
    }

    fn send(&mut self, line: &str) -> std::io::Result<()> {
        let w = &mut self.write;
        self.rt.block_on(async {
            w.write_all(line.as_bytes()).await?;
            w.write_all(b"\n").await?;
            w.flush().await
        })
    }

    fn receive(&mut self) -> std::io::Result<usize> {
        self.line.clear();
        let (r, line) = (&mut self.read, &mut self.line);
        self.rt.block_on(r.read_line(line))
    }

    /// One `tools/call` round trip; returns the response's length in bytes.
    pub fn call(&mut self) -> std::io::Result<usize> {
        self.id += 1;
        let request = format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{{"name":"isa","arguments":{{}}}}}}"#,
            self.id
        );
        self.send(&request)?;
        self.receive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_trip_returns_the_answer() {
        let mut rt = RoundTrip::new().unwrap();
        let n = rt.call().unwrap();
        assert!(n > answer_text().len(), "{n}");
        assert!(rt.line.contains("R18-no-failure-evidence"), "{}", rt.line);
    }
}
