//! jigasi-sip (under construction).
