//! jigasi-testpeers (under construction).
