//! Recovery-group inference (filled in by the traces issue).
