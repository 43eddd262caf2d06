//! Jitsi XMPP elements (under construction).
