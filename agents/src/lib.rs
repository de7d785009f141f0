//! Agent policies and the simulated LLM pipeline.
