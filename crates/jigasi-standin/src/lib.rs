//! Jicofo + JVB stand-in (under construction).
