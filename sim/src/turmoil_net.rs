//! The turmoil backend of [`Network`]: messages travel as real UDP datagrams through turmoil's
//! simulated network, one host per service plus one for the users' client.
//!
//! Each host runs a small async loop on its own paused tokio runtime: it sends the datagrams the
//! core queued for it (once any injected extra delay has passed) and records every datagram it
//! receives with turmoil's clock. The driver steps turmoil one tick (1 ms) at a time while
//! messages are in flight, so arrival times are quantised to ticks — the price of running real
//! socket code, and the reason this backend checks the event-driven one rather than replacing
//! it (see the conformance test, `sim/tests/conformance.rs`).

use crate::net::{MsgId, Network};
use kernel::VirtualTime;
use std::cell::RefCell;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

const PORT: u16 = 7000;

type Outbox = Rc<RefCell<Vec<(u16, u64, u64)>>>;
type Inbox = Rc<RefCell<Vec<(u64, u64)>>>;

/// Transport over turmoil. See the [module documentation](self).
pub struct TurmoilNetwork {
    sim: turmoil::Sim<'static>,
    outboxes: Vec<Outbox>,
    inbox: Inbox,
    now_us: u64,
    tick_us: u64,
    in_flight: usize,
}

impl TurmoilNetwork {
    /// A network of `nodes` hosts (node `i` is named `node-i`), seeded with `seed`, stepping
    /// `tick` at a time, whose links delay every datagram by between `min_latency` and
    /// `max_latency` (turmoil draws it, in whole milliseconds).
    pub fn new(
        nodes: usize,
        seed: u64,
        tick: Duration,
        min_latency: Duration,
        max_latency: Duration,
    ) -> Self {
        let mut sim = turmoil::Builder::new()
            .epoch(UNIX_EPOCH)
            .rng_seed(seed)
            .tick_duration(tick)
            .simulation_duration(Duration::from_secs(365 * 24 * 3600))
            .min_message_latency(min_latency)
            .max_message_latency(max_latency)
            .udp_capacity(1 << 16)
            .build();
        let names: Rc<Vec<String>> = Rc::new((0..nodes).map(|i| format!("node-{i}")).collect());
        let inbox: Inbox = Rc::new(RefCell::new(Vec::new()));
        let mut outboxes = Vec::with_capacity(nodes);
        for name in names.iter() {
            let outbox: Outbox = Rc::new(RefCell::new(Vec::new()));
            outboxes.push(outbox.clone());
            let (names, inbox) = (names.clone(), inbox.clone());
            sim.host(name.as_str(), move || {
                host(outbox.clone(), inbox.clone(), names.clone(), tick)
            });
        }
        TurmoilNetwork {
            sim,
            outboxes,
            inbox,
            now_us: 0,
            tick_us: tick.as_micros() as u64,
            in_flight: 0,
        }
    }
}

/// One host's software: send what the core queued, record what arrives.
async fn host(
    outbox: Outbox,
    inbox: Inbox,
    names: Rc<Vec<String>>,
    tick: Duration,
) -> turmoil::Result {
    let sock = turmoil::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, PORT)).await?;
    let mut buf = [0u8; 8];
    loop {
        let now_us = turmoil::elapsed().as_micros() as u64;
        let due: Vec<(u16, u64)> = {
            let mut queued = outbox.borrow_mut();
            let (ready, wait): (Vec<_>, Vec<_>) = queued.drain(..).partition(|m| m.2 <= now_us);
            *queued = wait;
            ready.into_iter().map(|(to, msg, _)| (to, msg)).collect()
        };
        for (to, msg) in due {
            sock.send_to(&msg.to_le_bytes(), (names[to as usize].as_str(), PORT))
                .await?;
        }
        tokio::select! {
            biased;
            received = sock.recv_from(&mut buf) => {
                let (n, _) = received?;
                if n == buf.len() {
                    let at = turmoil::elapsed().as_micros() as u64;
                    inbox.borrow_mut().push((at, u64::from_le_bytes(buf)));
                }
            }
            _ = tokio::time::sleep(tick) => {}
        }
    }
}

impl Network for TurmoilNetwork {
    fn send(&mut self, now: VirtualTime, from: usize, to: usize, msg: MsgId, extra_delay_us: u64) {
        self.in_flight += 1;
        self.outboxes[from]
            .borrow_mut()
            .push((to as u16, msg.0, now.as_micros() + extra_delay_us));
    }

    fn next_delivery(&mut self) -> Option<VirtualTime> {
        (self.in_flight > 0).then_some(VirtualTime(self.now_us + self.tick_us))
    }

    fn deliver_until(&mut self, t: VirtualTime, out: &mut Vec<(VirtualTime, MsgId)>) {
        while self.now_us < t.as_micros() {
            self.sim
                .step()
                .expect("turmoil hosts run forever and only fail on a bug");
            self.now_us = self.sim.elapsed().as_micros() as u64;
        }
        let mut arrived = std::mem::take(&mut *self.inbox.borrow_mut());
        arrived.sort_by_key(|&(at, msg)| (at, msg));
        self.in_flight -= arrived.len();
        out.extend(
            arrived
                .into_iter()
                .map(|(at, msg)| (VirtualTime(at.max(self.now_us)), MsgId(msg))),
        );
    }

    fn in_flight(&self) -> usize {
        self.in_flight
    }
}
