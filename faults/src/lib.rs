//! The five fault types and their retraction.
