//! jigasi-config (under construction).
