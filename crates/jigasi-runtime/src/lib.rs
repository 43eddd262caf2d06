//! jigasi-runtime (under construction).
