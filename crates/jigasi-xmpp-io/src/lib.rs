//! jigasi-xmpp-io (under construction).
