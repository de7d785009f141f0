//! Deterministic event-driven network simulation of a microservice deployment, with a turmoil backend.
