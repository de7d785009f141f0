//! The hub threshold of online incidents, relative to the graph.
//!
//! The kernel's absolute threshold ([`kernel::HUB_FAN_IN`]: more than 20 distinct callers) is
//! sized for the industrial graphs; in a DeathStarBench application no service has more than a
//! handful of callers in its traces (socialNetwork 3, mediaMicroservices 5, hotelReservation 1),
//! so drain-before-restart (`R3`) could never apply online. Online recovery scopes therefore use
//! a threshold relative to the graph: a hub has more distinct callers than a quarter of the
//! services that call anything ([`HUB_CALLER_SHARE`], an assumption: a restart that a quarter of
//! the application's callers wait on is one an SRE drains first), never fewer than
//! [`MIN_HUB_FAN_IN`] + 1 and never more than the kernel's absolute threshold allows. In the
//! built-in applications this makes `user-service`, `social-graph-service` and
//! `post-storage-service` (socialNetwork) and `compose-review-service` (mediaMicroservices)
//! hubs; hotelReservation's request graph is a tree and has none.

use kernel::{DependencyGraph, HUB_FAN_IN};

/// The share of calling services a hub's callers must exceed (an assumption, module docs).
pub const HUB_CALLER_SHARE: f64 = 0.25;

/// The smallest threshold: a service with two callers is never a hub.
pub const MIN_HUB_FAN_IN: usize = 2;

/// The hub threshold for `graph`: a hub has more than this many distinct callers.
pub fn hub_fan_in(graph: &DependencyGraph) -> usize {
    let calling = graph
        .services()
        .filter(|(id, _)| graph.callees(*id).next().is_some())
        .count();
    ((calling as f64 * HUB_CALLER_SHARE).floor() as usize).clamp(MIN_HUB_FAN_IN, HUB_FAN_IN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::{EdgeKind, ServiceKind};

    fn star(callers: usize, into_hub: usize) -> DependencyGraph {
        let mut g = DependencyGraph::new();
        let hub = g.ensure_service("hub", ServiceKind::Stateless);
        let leaf = g.ensure_service("leaf", ServiceKind::Db);
        for i in 0..callers {
            let c = g.ensure_service(&format!("c{i}"), ServiceKind::Stateless);
            let to = if i < into_hub { hub } else { leaf };
            g.add_calls(c, to, EdgeKind::Rpc, 1);
        }
        g
    }

    #[test]
    fn the_threshold_is_a_quarter_of_the_callers_within_its_bounds() {
        // 12 calling services: more than 3 callers make a hub.
        assert_eq!(hub_fan_in(&star(12, 4)), 3);
        // Few services: never below the floor.
        assert_eq!(hub_fan_in(&star(4, 4)), MIN_HUB_FAN_IN);
        // A large graph: the kernel's absolute threshold.
        assert_eq!(hub_fan_in(&star(400, 4)), HUB_FAN_IN);
    }
}
