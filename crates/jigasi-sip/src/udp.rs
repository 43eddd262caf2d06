//! The UDP listener socket, screened before the SIP stack parses anything.
//!
//! rsipstack reads datagrams through its `platform::net::UdpSocket` trait; we give it a socket
//! that looks at every datagram first. Oversized datagrams (which the stack's 8 KiB buffer would
//! silently truncate into a different message) and messages the validator condemns never reach
//! the stack; the validator may ask for an error response, which goes straight back to the
//! sender.

use std::net::SocketAddr;

use tracing::debug;

/// What to do with one received datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Hand its first `n` bytes to the stack.
    Pass(usize),
    /// Drop it silently.
    Drop(&'static str),
    /// Drop it and send these bytes (an error response) back to the sender.
    Answer(Vec<u8>),
}

/// Decides about one datagram read into a buffer of `capacity` bytes, for a stack that reads
/// at most `stack_capacity` bytes.
pub(crate) fn screen(
    datagram: &[u8],
    from: SocketAddr,
    capacity: usize,
    stack_capacity: usize,
) -> Verdict {
    if datagram.len() >= capacity {
        // The kernel cut it to the buffer size: what is left is not the message that was sent.
        return Verdict::Drop("oversized datagram");
    }
    match crate::validate::screen_message(datagram, from) {
        // The stack would truncate it into a different message.
        Verdict::Pass(n) if n >= stack_capacity => Verdict::Drop("too large for the stack"),
        verdict @ (Verdict::Pass(_) | Verdict::Drop(_) | Verdict::Answer(_)) => verdict,
    }
}

/// A tokio UDP socket that screens what it receives.
pub(crate) struct ScreenedUdpSocket {
    socket: tokio::net::UdpSocket,
    /// Room for the largest UDP payload; only the stack's one receive loop uses it.
    scratch: tokio::sync::Mutex<Vec<u8>>,
}

impl ScreenedUdpSocket {
    pub(crate) fn new(socket: tokio::net::UdpSocket) -> Self {
        Self {
            socket,
            scratch: tokio::sync::Mutex::new(vec![0; SCRATCH_BYTES]),
        }
    }
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for ScreenedUdpSocket {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        let mut scratch = self.scratch.lock().await;
        loop {
            let (len, from) = self.socket.recv_from(&mut scratch).await?;
            let datagram = &scratch[..len];
            match screen(datagram, from, scratch.len(), buf.len()) {
                Verdict::Pass(n) => {
                    // `screen` passes only `n < buf.len()` and `n <= len`.
                    buf[..n].copy_from_slice(&datagram[..n]);
                    return Ok((n, from));
                }
                Verdict::Drop(why) => debug!(%from, len, why, "dropped SIP datagram"),
                Verdict::Answer(response) => {
                    debug!(%from, len, "answering malformed SIP datagram");
                    if let Err(e) = self.socket.send_to(&response, from).await {
                        debug!(%from, error = %e, "could not answer malformed datagram");
                    }
                }
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        Ok(self.socket.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}

/// One more than the largest UDP payload, so that a full buffer means "truncated".
const SCRATCH_BYTES: usize = 65_536;

#[cfg(test)]
mod tests {
    use super::*;

    const FROM: &str = "127.0.0.1:5070";
    const OPTIONS: &[u8] = b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: 1@x\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

    fn from() -> SocketAddr {
        FROM.parse().unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn truncated_datagrams_are_dropped() {
        let full = vec![b'x'; 100];
        assert_eq!(
            screen(&full, from(), 100, 8192),
            Verdict::Drop("oversized datagram")
        );
    }

    #[test]
    fn messages_the_stack_would_truncate_are_dropped() {
        assert_eq!(
            screen(OPTIONS, from(), SCRATCH_BYTES, 64),
            Verdict::Drop("too large for the stack")
        );
    }

    #[test]
    fn options_passes() {
        assert_eq!(
            screen(OPTIONS, from(), SCRATCH_BYTES, 8192),
            Verdict::Pass(OPTIONS.len())
        );
    }

    #[test]
    fn bytes_after_content_length_are_cut() {
        let mut two = OPTIONS.to_vec();
        two.extend_from_slice(b"INVITE sip:x SIP/2.0\r\n\r\n");
        assert_eq!(
            screen(&two, from(), SCRATCH_BYTES, 8192),
            Verdict::Pass(OPTIONS.len())
        );
    }
}
