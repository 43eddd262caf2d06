//! Audio engine (under construction).
