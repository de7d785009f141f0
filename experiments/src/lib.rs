//! Experiment runner: harm and TTR oracles, online and offline matrices.
