//! Netstring framing (`<len>:<bytes>,`), as used by baresip's `ctrl_tcp` module.

/// Longest frame accepted (baresip's messages are a few hundred bytes).
const MAX_FRAME: usize = 1 << 20;

/// Encodes one frame.
pub(crate) fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out.push(b',');
    out
}

/// A malformed netstring stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NetstringError {
    /// The length prefix is not a decimal number.
    BadLength,
    /// The announced length is over [`MAX_FRAME`].
    TooLong(usize),
    /// The frame is not terminated by `,`.
    MissingComma,
}

impl std::fmt::Display for NetstringError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetstringError::BadLength => write!(f, "netstring length is not a decimal number"),
            NetstringError::TooLong(n) => write!(f, "netstring of {n} bytes is too long"),
            NetstringError::MissingComma => write!(f, "netstring not terminated by ','"),
        }
    }
}

/// Incremental decoder: push bytes as they arrive, pop complete frames.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// Appends received bytes.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Vec<u8>>, NetstringError> {
        let Some(colon) = self.buf.iter().position(|&b| b == b':') else {
            // At most 7 digits for MAX_FRAME: a longer prefix without ':' is garbage.
            if self.buf.len() > 8 || !self.buf.iter().all(u8::is_ascii_digit) {
                return Err(NetstringError::BadLength);
            }
            return Ok(None);
        };
        let digits = &self.buf[..colon];
        if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(NetstringError::BadLength);
        }
        let len: usize = std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(NetstringError::BadLength)?;
        if len > MAX_FRAME {
            return Err(NetstringError::TooLong(len));
        }
        let end = colon + 1 + len;
        if self.buf.len() < end + 1 {
            return Ok(None);
        }
        if self.buf[end] != b',' {
            return Err(NetstringError::MissingComma);
        }
        let frame = self.buf[colon + 1..end].to_vec();
        self.buf.drain(..=end);
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip() {
        let mut d = Decoder::default();
        d.push(&encode(b"hello"));
        d.push(&encode(b""));
        assert_eq!(d.next_frame().unwrap(), Some(b"hello".to_vec()));
        assert_eq!(d.next_frame().unwrap(), Some(Vec::new()));
        assert_eq!(d.next_frame().unwrap(), None);
        assert_eq!(encode(b"ab"), b"2:ab,".to_vec());
    }

    #[test]
    fn partial_frames_wait_for_more() {
        let mut d = Decoder::default();
        for chunk in [&b"1"[..], b"2", b":hello", b" worl", b"d!"] {
            d.push(chunk);
            assert_eq!(d.next_frame().unwrap(), None);
        }
        d.push(b",5:");
        assert_eq!(d.next_frame().unwrap(), Some(b"hello world!".to_vec()));
        assert_eq!(d.next_frame().unwrap(), None);
    }

    #[test]
    fn malformed_input_is_an_error() {
        let mut d = Decoder::default();
        d.push(b"x:abc,");
        assert_eq!(d.next_frame(), Err(NetstringError::BadLength));
        let mut d = Decoder::default();
        d.push(b"3:abcd");
        assert_eq!(d.next_frame(), Err(NetstringError::MissingComma));
        let mut d = Decoder::default();
        d.push(b"99999999:");
        assert_eq!(d.next_frame(), Err(NetstringError::TooLong(99_999_999)));
        let mut d = Decoder::default();
        d.push(b"123456789");
        assert_eq!(d.next_frame(), Err(NetstringError::BadLength));
        let mut d = Decoder::default();
        d.push(b":abc");
        assert_eq!(d.next_frame(), Err(NetstringError::BadLength));
    }
}
