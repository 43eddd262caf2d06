//! jigasi-xmpp (under construction).
