//! DeathStarBench topologies and workloads.
