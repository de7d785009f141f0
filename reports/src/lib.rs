//! Tables, plots and the evaluation report.
