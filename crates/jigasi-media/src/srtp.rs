//! SRTP and SRTCP (RFC 3711) for the phone leg, keyed by SDES (RFC 4568): the two suites Jigasi
//! offers, `AES_CM_128_HMAC_SHA1_80` and `AES_CM_128_HMAC_SHA1_32` (RFC 4568 §6.2).
//!
//! One master key (16-byte key + 14-byte salt, the `inline:` of an `a=crypto` line) keys one
//! direction: [`SrtpSender`] protects what we send with *our* key, [`SrtpReceiver`] checks and
//! decrypts what the phone sends with *its* key. Both derive the SRTP and SRTCP session keys
//! once with the AES-CM PRF (key derivation rate 0, RFC 3711 §4.3), then work in place on the
//! caller's buffers: nothing allocates per packet.
//!
//! - SRTP: AES-CM encryption of the payload (§4.1.1), HMAC-SHA1 over the header, the encrypted
//!   payload and the rollover counter (ROC), truncated to 80 or 32 bits (§4.2). The receiver
//!   guesses each packet's ROC with the §3.3.1 index estimation and keeps a 64-packet replay
//!   window (§3.3.2) per SSRC.
//! - SRTCP: everything after the first 8 bytes encrypted, then the E-bit with the 31-bit SRTCP
//!   index and an 80-bit tag, for both suites (RFC 4568 §6.2.2, §6.2.3).
//!
//! A packet that fails a check is an error the caller counts and drops ([`SrtpStats`] counts
//! them too); the state is only advanced by packets that authenticated, so a forged packet
//! cannot move the ROC or the replay window.

use aes::Aes128;
use aes::cipher::{InnerIvInit, KeyInit, StreamCipher, StreamCipherCoreWrapper};
use ctr::CtrCore;
use ctr::flavors::Ctr128BE;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::Blame;

type HmacSha1 = Hmac<Sha1>;
type AesCtr = StreamCipherCoreWrapper<CtrCore<Aes128, Ctr128BE>>;

/// Length of the master key.
pub const MASTER_KEY_LEN: usize = 16;
/// Length of the master salt.
pub const MASTER_SALT_LEN: usize = 14;
/// Length of the SDES `inline:` key material: master key then master salt.
pub const MASTER_LEN: usize = MASTER_KEY_LEN + MASTER_SALT_LEN;
/// What SRTCP appends to an RTCP packet: the E-bit and index word, then the 80-bit tag.
pub const SRTCP_TRAILER: usize = 4 + TAG_80;
/// The most bytes protection adds to any packet (room to leave in send buffers).
pub const MAX_OVERHEAD: usize = SRTCP_TRAILER;

const TAG_80: usize = 10;
const TAG_32: usize = 4;
const RTP_HEADER: usize = 12;
const RTCP_HEADER: usize = 8;
/// Packets the replay window remembers (RFC 3711 §3.3.2 asks for at least 64).
const REPLAY_WINDOW: u64 = 64;
/// SRTP session key labels (RFC 3711 §4.3.1).
const RTP_LABELS: Labels = Labels {
    cipher: 0x00,
    auth: 0x01,
    salt: 0x02,
};
/// SRTCP session key labels (RFC 3711 §4.3.2).
const RTCP_LABELS: Labels = Labels {
    cipher: 0x03,
    auth: 0x04,
    salt: 0x05,
};

/// An SDES crypto suite we implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag on SRTP and SRTCP.
    AesCm128HmacSha1_80,
    /// AES-128 counter mode, HMAC-SHA1 with a 32-bit tag on SRTP (80-bit on SRTCP).
    AesCm128HmacSha1_32,
}

impl SrtpSuite {
    /// The SRTP authentication tag length in bytes.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Self::AesCm128HmacSha1_80 => TAG_80,
            Self::AesCm128HmacSha1_32 => TAG_32,
        }
    }

    /// The RFC 4568 name, as in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            Self::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }
}

/// An SRTP master key and salt. Its `Debug` never shows the bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SrtpMasterKey {
    key: [u8; MASTER_KEY_LEN],
    salt: [u8; MASTER_SALT_LEN],
}

impl SrtpMasterKey {
    /// From the 30 bytes of an SDES `inline:` parameter (key, then salt).
    pub fn new(material: &[u8; MASTER_LEN]) -> Self {
        let (key, salt) = material.split_at(MASTER_KEY_LEN);
        let mut out = Self {
            key: [0; MASTER_KEY_LEN],
            salt: [0; MASTER_SALT_LEN],
        };
        out.key.copy_from_slice(key);
        out.salt.copy_from_slice(salt);
        out
    }

    /// From key material of any length: exactly 30 bytes, or [`SrtpError::KeyLength`].
    pub fn from_slice(material: &[u8]) -> Result<Self, SrtpError> {
        let material: &[u8; MASTER_LEN] =
            material.try_into().map_err(|_| SrtpError::KeyLength {
                len: material.len(),
            })?;
        Ok(Self::new(material))
    }
}

impl std::fmt::Debug for SrtpMasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SrtpMasterKey(<redacted>)")
    }
}

/// The negotiated SDES keys of one phone leg: the suite, our key (what we send) and the
/// phone's key (what it sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The crypto suite both sides use.
    pub suite: SrtpSuite,
    /// Our master key, from our `a=crypto` line.
    pub local: SrtpMasterKey,
    /// The phone's master key, from its `a=crypto` line.
    pub remote: SrtpMasterKey,
}

/// Why a packet could not be protected or unprotected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// Shorter than a header plus the authentication tag (or trailer).
    #[error("packet too short for SRTP/SRTCP ({len} bytes)")]
    TooShort {
        /// The packet length.
        len: usize,
    },
    /// Not RTP/RTCP version 2, or a header (CSRCs, extension) longer than the packet.
    #[error("malformed RTP/RTCP header")]
    Malformed,
    /// The authentication tag does not match: forged, corrupted, or keyed differently.
    #[error("authentication failed")]
    AuthFailed,
    /// A packet index already received, or older than the replay window.
    #[error("replayed or too old (index {index})")]
    Replayed {
        /// The packet's index (SRTP: ROC·2¹⁶ + sequence; SRTCP: the SRTCP index).
        index: u64,
    },
    /// SDES key material that is not 16 + 14 bytes.
    #[error("SDES key material must be 30 bytes, got {len}")]
    KeyLength {
        /// Its length.
        len: usize,
    },
    /// Our buffer has no room for the tag (or trailer), or the packet does not fit our scratch
    /// buffer.
    #[error("buffer too small: need {needed} bytes, have {len}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        len: usize,
    },
}

impl SrtpError {
    /// Who is to blame for this error.
    pub fn blame(&self) -> Blame {
        match self {
            Self::TooShort { .. }
            | Self::Malformed
            | Self::AuthFailed
            | Self::Replayed { .. }
            | Self::KeyLength { .. } => Blame::Peer,
            Self::BufferTooSmall { .. } => Blame::Internal,
        }
    }
}

/// Counters of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SrtpStats {
    /// SRTP packets protected (sender) or authenticated and decrypted (receiver).
    pub rtp_packets: u64,
    /// SRTCP packets protected (sender) or authenticated and decrypted (receiver).
    pub rtcp_packets: u64,
    /// SRTP packets dropped because their tag did not match (receiver).
    pub auth_failures: u64,
    /// SRTP packets dropped as replays or too old (receiver).
    pub replayed: u64,
    /// SRTP packets dropped as too short or malformed (receiver).
    pub malformed: u64,
    /// SRTCP packets dropped because their tag did not match (receiver; some phones send a
    /// last RTCP packet unprotected while they tear the call down).
    pub rtcp_auth_failures: u64,
    /// SRTCP packets dropped as replays or too old (receiver).
    pub rtcp_replayed: u64,
    /// SRTCP packets dropped as too short or malformed (receiver).
    pub rtcp_malformed: u64,
}

impl SrtpStats {
    fn count(&mut self, result: Result<usize, SrtpError>, rtcp: bool) -> Result<usize, SrtpError> {
        let counter = match (result, rtcp) {
            (Ok(_), _) => return result,
            (Err(SrtpError::AuthFailed), false) => &mut self.auth_failures,
            (Err(SrtpError::AuthFailed), true) => &mut self.rtcp_auth_failures,
            (Err(SrtpError::Replayed { .. }), false) => &mut self.replayed,
            (Err(SrtpError::Replayed { .. }), true) => &mut self.rtcp_replayed,
            (
                Err(
                    SrtpError::TooShort { .. }
                    | SrtpError::Malformed
                    | SrtpError::KeyLength { .. }
                    | SrtpError::BufferTooSmall { .. },
                ),
                false,
            ) => &mut self.malformed,
            (
                Err(
                    SrtpError::TooShort { .. }
                    | SrtpError::Malformed
                    | SrtpError::KeyLength { .. }
                    | SrtpError::BufferTooSmall { .. },
                ),
                true,
            ) => &mut self.rtcp_malformed,
        };
        *counter += 1;
        result
    }
}

/// Key derivation labels for one of SRTP / SRTCP.
struct Labels {
    cipher: u8,
    auth: u8,
    salt: u8,
}

/// The session keys of SRTP or SRTCP for one master key.
#[derive(Clone)]
struct SessionKeys {
    /// The expanded session encryption key.
    cipher: Aes128,
    salt: [u8; MASTER_SALT_LEN],
    /// HMAC-SHA1 keyed with the session authentication key (cloned per packet: no
    /// re-keying, no allocation).
    auth: HmacSha1,
}

impl SessionKeys {
    fn derive(master: &SrtpMasterKey, labels: &Labels) -> Self {
        let mut cipher_key = [0u8; 16];
        let mut auth_key = [0u8; 20];
        let mut salt = [0u8; MASTER_SALT_LEN];
        prf(master, labels.cipher, &mut cipher_key);
        prf(master, labels.auth, &mut auth_key);
        prf(master, labels.salt, &mut salt);
        Self {
            cipher: Aes128::new(&cipher_key.into()),
            salt,
            auth: hmac_key(&auth_key),
        }
    }

    /// XORs the AES-CM keystream for (`ssrc`, `index`) into `data` (RFC 3711 §4.1.1).
    fn apply_keystream(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..MASTER_SALT_LEN].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[8..14].iter_mut().zip(index.to_be_bytes()[2..].iter()) {
            *b ^= s;
        }
        let core = CtrCore::<Aes128, Ctr128BE>::inner_iv_init(self.cipher.clone(), &iv.into());
        AesCtr::from_core(core).apply_keystream(data);
    }

    /// HMAC-SHA1 over `data` then `trailer` (the ROC for SRTP; empty for SRTCP, whose index
    /// word is part of `data`).
    fn tag(&self, data: &[u8], trailer: &[u8]) -> [u8; 20] {
        let mut mac = self.auth.clone();
        mac.update(data);
        mac.update(trailer);
        mac.finalize().into_bytes().into()
    }
}

fn hmac_key(key: &[u8; 20]) -> HmacSha1 {
    // HMAC accepts keys of any length (longer ones are hashed, shorter ones padded), so this
    // cannot fail.
    <HmacSha1 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// The AES-CM PRF with key derivation rate 0 (RFC 3711 §4.3.1, §4.3.3): the keystream for
/// IV = (master salt XOR label·2⁴⁸)·2¹⁶ under the master key.
fn prf(master: &SrtpMasterKey, label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..MASTER_SALT_LEN].copy_from_slice(&master.salt);
    iv[7] ^= label;
    out.fill(0);
    let core =
        CtrCore::<Aes128, Ctr128BE>::inner_iv_init(Aes128::new(&master.key.into()), &iv.into());
    AesCtr::from_core(core).apply_keystream(out);
}

/// The RFC 3711 §3.3.1 index estimate for `seq` given the highest sequence `s_l` received in
/// rollover `roc`: the ROC the sender used (`roc - 1`, `roc` or `roc + 1`). `None` for a packet
/// from before the first rollover we know of.
fn estimate_roc(roc: u32, s_l: u16, seq: u16) -> Option<u32> {
    if s_l < 0x8000 {
        if seq > s_l && seq - s_l > 0x8000 {
            roc.checked_sub(1)
        } else {
            Some(roc)
        }
    } else if s_l - 0x8000 > seq {
        Some(roc.wrapping_add(1))
    } else {
        Some(roc)
    }
}

/// A sliding window over the highest index received and the 63 before it.
#[derive(Debug, Clone, Copy)]
struct ReplayWindow {
    highest: u64,
    /// Bit n: index `highest - n` was received.
    seen: u64,
}

impl ReplayWindow {
    fn starting_at(index: u64) -> Self {
        Self {
            highest: index,
            seen: 1,
        }
    }

    fn check(&self, index: u64) -> Result<(), SrtpError> {
        if index > self.highest {
            return Ok(());
        }
        let behind = self.highest - index;
        if behind >= REPLAY_WINDOW || self.seen & (1 << behind) != 0 {
            return Err(SrtpError::Replayed { index });
        }
        Ok(())
    }

    fn accept(&mut self, index: u64) {
        if index > self.highest {
            let ahead = index - self.highest;
            self.seen = if ahead >= REPLAY_WINDOW {
                0
            } else {
                self.seen << ahead
            };
            self.seen |= 1;
            self.highest = index;
        } else {
            self.seen |= 1 << (self.highest - index);
        }
    }
}

/// The RTP header length (fixed part, CSRCs, extension) of `packet`.
fn rtp_header_len(packet: &[u8]) -> Result<usize, SrtpError> {
    let first = *packet.first().ok_or(SrtpError::TooShort { len: 0 })?;
    if first >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    let mut len = RTP_HEADER + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let words = packet.get(len + 2..len + 4).ok_or(SrtpError::Malformed)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    if len > packet.len() {
        return Err(SrtpError::Malformed);
    }
    Ok(len)
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    if let Some(b) = bytes.get(at..at + 4) {
        word.copy_from_slice(b);
    }
    u32::from_be_bytes(word)
}

/// Our rollover state for the one SSRC we send.
#[derive(Debug, Clone, Copy)]
struct SendStream {
    ssrc: u32,
    roc: u32,
    highest: u16,
}

/// Protects what we send to the phone, with our master key.
#[derive(Clone)]
pub struct SrtpSender {
    suite: SrtpSuite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    stream: Option<SendStream>,
    srtcp_index: u32,
    stats: SrtpStats,
}

impl SrtpSender {
    /// A sender for `suite` keyed with `master` (our `a=crypto` key).
    pub fn new(suite: SrtpSuite, master: &SrtpMasterKey) -> Self {
        Self {
            suite,
            rtp: SessionKeys::derive(master, &RTP_LABELS),
            rtcp: SessionKeys::derive(master, &RTCP_LABELS),
            stream: None,
            srtcp_index: 0,
            stats: SrtpStats::default(),
        }
    }

    /// The suite.
    pub fn suite(&self) -> SrtpSuite {
        self.suite
    }

    /// Encrypts and authenticates the RTP packet in `buf[..len]` in place, appending the tag;
    /// returns the SRTP length. `buf` needs [`SrtpSuite::rtp_tag_len`] spare bytes after `len`.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let tag_len = self.suite.rtp_tag_len();
        let total = len + tag_len;
        if buf.len() < total {
            return Err(SrtpError::BufferTooSmall {
                needed: total,
                len: buf.len(),
            });
        }
        let header = rtp_header_len(&buf[..len])?;
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let ssrc = be_u32(buf, 8);
        let stream = match self.stream {
            Some(s) if s.ssrc == ssrc => s,
            Some(_) | None => SendStream {
                ssrc,
                roc: 0,
                highest: seq,
            },
        };
        // Our sequence numbers only go forward: the estimate is `roc` or `roc + 1`.
        let roc = estimate_roc(stream.roc, stream.highest, seq).unwrap_or(0);
        let index = (u64::from(roc) << 16) | u64::from(seq);
        self.rtp.apply_keystream(ssrc, index, &mut buf[header..len]);
        let tag = self.rtp.tag(&buf[..len], &roc.to_be_bytes());
        buf[len..total].copy_from_slice(&tag[..tag_len]);
        self.stream = Some(if roc == stream.roc.wrapping_add(1) {
            SendStream {
                ssrc,
                roc,
                highest: seq,
            }
        } else if roc == stream.roc && seq > stream.highest {
            SendStream {
                highest: seq,
                ..stream
            }
        } else {
            stream
        });
        self.stats.rtp_packets += 1;
        Ok(total)
    }

    /// Encrypts and authenticates the RTCP compound packet in `buf[..len]` in place, appending
    /// the E-bit, the SRTCP index and the 80-bit tag; returns the SRTCP length. `buf` needs
    /// [`SRTCP_TRAILER`] spare bytes after `len`.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let total = len + SRTCP_TRAILER;
        if buf.len() < total {
            return Err(SrtpError::BufferTooSmall {
                needed: total,
                len: buf.len(),
            });
        }
        if len < RTCP_HEADER {
            return Err(SrtpError::TooShort { len });
        }
        if buf[0] >> 6 != 2 {
            return Err(SrtpError::Malformed);
        }
        let ssrc = be_u32(buf, 4);
        let index = self.srtcp_index;
        self.srtcp_index = (index + 1) & 0x7fff_ffff;
        self.rtcp
            .apply_keystream(ssrc, u64::from(index), &mut buf[RTCP_HEADER..len]);
        buf[len..len + 4].copy_from_slice(&(0x8000_0000 | index).to_be_bytes());
        let tag = self.rtcp.tag(&buf[..len + 4], &[]);
        buf[len + 4..total].copy_from_slice(&tag[..TAG_80]);
        self.stats.rtcp_packets += 1;
        Ok(total)
    }

    /// What was protected.
    pub fn stats(&self) -> &SrtpStats {
        &self.stats
    }
}

impl std::fmt::Debug for SrtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpSender")
            .field("suite", &self.suite)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// The receive state of the phone's one SSRC.
#[derive(Debug, Clone, Copy)]
struct ReceiveStream {
    ssrc: u32,
    roc: u32,
    /// The highest sequence number received in `roc` (`s_l`).
    highest: u16,
    window: ReplayWindow,
}

/// Checks and decrypts what the phone sends, with the phone's master key.
#[derive(Clone)]
pub struct SrtpReceiver {
    suite: SrtpSuite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    stream: Option<ReceiveStream>,
    rtcp_stream: Option<(u32, ReplayWindow)>,
    stats: SrtpStats,
}

impl SrtpReceiver {
    /// A receiver for `suite` keyed with `master` (the phone's `a=crypto` key).
    pub fn new(suite: SrtpSuite, master: &SrtpMasterKey) -> Self {
        Self {
            suite,
            rtp: SessionKeys::derive(master, &RTP_LABELS),
            rtcp: SessionKeys::derive(master, &RTCP_LABELS),
            stream: None,
            rtcp_stream: None,
            stats: SrtpStats::default(),
        }
    }

    /// The suite.
    pub fn suite(&self) -> SrtpSuite {
        self.suite
    }

    /// Authenticates and decrypts the SRTP packet in `buf` in place; returns the length of the
    /// RTP packet now in `buf[..len]`. A new SSRC starts a new stream (ROC 0) once one of its
    /// packets authenticates.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let result = self.try_unprotect_rtp(buf);
        self.stats.count(result, false)
    }

    fn try_unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.suite.rtp_tag_len();
        let Some(len) = buf.len().checked_sub(tag_len).filter(|l| *l >= RTP_HEADER) else {
            return Err(SrtpError::TooShort { len: buf.len() });
        };
        let header = rtp_header_len(&buf[..len])?;
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let ssrc = be_u32(buf, 8);
        let known = self.stream.filter(|s| s.ssrc == ssrc);
        let roc = match known {
            Some(s) => {
                let roc = estimate_roc(s.roc, s.highest, seq).ok_or(SrtpError::Replayed {
                    index: u64::from(seq),
                })?;
                s.window.check((u64::from(roc) << 16) | u64::from(seq))?;
                roc
            }
            None => 0,
        };
        let index = (u64::from(roc) << 16) | u64::from(seq);
        let (data, tag) = buf.split_at_mut(len);
        let expected = self.rtp.tag(data, &roc.to_be_bytes());
        if !bool::from(expected[..tag_len].ct_eq(&tag[..tag_len])) {
            return Err(SrtpError::AuthFailed);
        }
        self.rtp.apply_keystream(ssrc, index, &mut data[header..]);
        self.stream = Some(match known {
            None => ReceiveStream {
                ssrc,
                roc,
                highest: seq,
                window: ReplayWindow::starting_at(index),
            },
            Some(mut s) => {
                s.window.accept(index);
                if roc == s.roc.wrapping_add(1) {
                    s.roc = roc;
                    s.highest = seq;
                } else if roc == s.roc && seq > s.highest {
                    s.highest = seq;
                }
                s
            }
        });
        self.stats.rtp_packets += 1;
        Ok(len)
    }

    /// Authenticates the SRTCP packet in `buf` and decrypts it in place (unless its E-bit says
    /// it was sent unencrypted); returns the length of the RTCP compound now in `buf[..len]`.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let result = self.try_unprotect_rtcp(buf);
        self.stats.count(result, true)
    }

    fn try_unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let Some(len) = buf
            .len()
            .checked_sub(SRTCP_TRAILER)
            .filter(|l| *l >= RTCP_HEADER)
        else {
            return Err(SrtpError::TooShort { len: buf.len() });
        };
        if buf[0] >> 6 != 2 {
            return Err(SrtpError::Malformed);
        }
        let ssrc = be_u32(buf, 4);
        let word = be_u32(buf, len);
        let encrypted = word & 0x8000_0000 != 0;
        let index = u64::from(word & 0x7fff_ffff);
        let known = self.rtcp_stream.filter(|(s, _)| *s == ssrc);
        if let Some((_, window)) = known {
            window.check(index)?;
        }
        let (data, tag) = buf.split_at_mut(len + 4);
        let expected = self.rtcp.tag(data, &[]);
        if !bool::from(expected[..TAG_80].ct_eq(&tag[..TAG_80])) {
            return Err(SrtpError::AuthFailed);
        }
        if encrypted {
            self.rtcp
                .apply_keystream(ssrc, index, &mut data[RTCP_HEADER..len]);
        }
        self.rtcp_stream = Some(match known {
            Some((_, mut window)) => {
                window.accept(index);
                (ssrc, window)
            }
            None => (ssrc, ReplayWindow::starting_at(index)),
        });
        self.stats.rtcp_packets += 1;
        Ok(len)
    }

    /// What was received and dropped.
    pub fn stats(&self) -> &SrtpStats {
        &self.stats
    }
}

impl std::fmt::Debug for SrtpReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpReceiver")
            .field("suite", &self.suite)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text
            .bytes()
            .filter(u8::is_ascii_hexdigit)
            .map(|c| match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                _ => c - b'A' + 10,
            })
            .collect();
        digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect()
    }

    /// RFC 3711 Appendix B.3's master key and salt (also libsrtp's test key).
    fn rfc_master() -> SrtpMasterKey {
        let mut material = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
        material.extend(hex("0EC675AD498AFEEBB6960B3AABE6"));
        SrtpMasterKey::from_slice(&material).unwrap()
    }

    fn master(fill: u8) -> SrtpMasterKey {
        SrtpMasterKey::new(&[fill; MASTER_LEN])
    }

    /// RFC 3711 Appendix B.3: the AES-CM PRF, all 94 octets of the auth key vector (six
    /// blocks: the counter really advances), and the SRTP session keys we derive.
    #[test]
    fn key_derivation_matches_rfc_3711_b3() {
        let master = rfc_master();
        let mut cipher_key = [0u8; 16];
        prf(&master, 0x00, &mut cipher_key);
        assert_eq!(cipher_key.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
        let mut salt = [0u8; 14];
        prf(&master, 0x02, &mut salt);
        assert_eq!(salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
        let mut auth = [0u8; 94];
        prf(&master, 0x01, &mut auth);
        assert_eq!(
            auth.to_vec(),
            hex(
                "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCE
                 E049646C43D9327AD175578EF72270986371C10C9A369AC2F94A8C5FBCDDDC25
                 6D6E919A48B610EF17C2041E474035766B68642C59BBFC2F34DB60DBDFB2"
            )
        );
        let keys = SessionKeys::derive(&master, &RTP_LABELS);
        assert_eq!(keys.salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    }

    /// RFC 3711 Appendix B.2: the AES-CM keystream for SSRC 0 and index 0 (the IV is the salt),
    /// at the start and near the end of the 2¹⁶-block segment.
    #[test]
    fn keystream_matches_rfc_3711_b2() {
        let key: [u8; 16] = hex("2B7E151628AED2A6ABF7158809CF4F3C").try_into().unwrap();
        let salt: [u8; 14] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").try_into().unwrap();
        let keys = SessionKeys {
            cipher: Aes128::new(&key.into()),
            salt,
            auth: hmac_key(&[0; 20]),
        };
        let mut stream = vec![0u8; 16 * 0xff02];
        keys.apply_keystream(0, 0, &mut stream);
        assert_eq!(
            stream[..48].to_vec(),
            hex("E03EAD0935C95E80E166B16DD92B4EB4
                 D23513162B02D0F72A43A2FE4A5F97AB
                 41E95B3BB0A2E8DD477901E4FCA894C0")
        );
        assert_eq!(
            stream[16 * 0xfeff..].to_vec(),
            hex("EC8CDF7398607CB0F2D21675EA9EA1E4
                 362B7C3C6773516318A077D7FC5073AE
                 6A2CC3787889374FBEB4C81B17BA6C44")
        );
    }

    const RTP_PLAIN: &str = "800f1234 decafbad cafebabe abababab abababab abababab abababab";
    /// libsrtp's known answer for the RFC key (srtp_validate), SSRC 0xcafebabe, sequence 0x1234.
    const SRTP_80: &str = "800f1234 decafbad cafebabe 4e55dc4c e79978d8 8ca4d215 949d2402
                           b78d6acc 99ea179b 8dbb";
    const RTCP_PLAIN: &str = "81c8000b cafebabe abababab abababab abababab abababab";
    /// libsrtp's SRTCP known answer: SRTCP index 1 with the E-bit.
    const SRTCP_80: &str = "81c8000b cafebabe 7128035b e487b9bd bef89041 f977a5a8
                            80000001 993e08cd 54d6c123 0798";

    #[test]
    fn protect_and_unprotect_match_the_libsrtp_known_answers() {
        let mut sender = SrtpSender::new(SrtpSuite::AesCm128HmacSha1_80, &rfc_master());
        let mut buf = hex(RTP_PLAIN);
        let len = buf.len();
        buf.resize(len + TAG_80, 0);
        assert_eq!(sender.protect_rtp(&mut buf, len), Ok(len + TAG_80));
        assert_eq!(buf, hex(SRTP_80));

        let mut receiver = SrtpReceiver::new(SrtpSuite::AesCm128HmacSha1_80, &rfc_master());
        assert_eq!(receiver.unprotect_rtp(&mut buf), Ok(len));
        assert_eq!(buf[..len].to_vec(), hex(RTP_PLAIN));

        // SRTCP: our first packet carries index 0 (RFC 3711 §3.4), libsrtp's index 1, so the
        // second protection of the same packet is the known answer.
        let plain = hex(RTCP_PLAIN);
        let mut out = [0u8; 64];
        for expected_index in [0u32, 1] {
            out[..plain.len()].copy_from_slice(&plain);
            let n = sender.protect_rtcp(&mut out, plain.len()).unwrap();
            assert_eq!(n, plain.len() + SRTCP_TRAILER);
            assert_eq!(be_u32(&out, plain.len()), 0x8000_0000 | expected_index);
        }
        assert_eq!(out[..38].to_vec(), hex(SRTCP_80));
        let mut srtcp = hex(SRTCP_80);
        assert_eq!(receiver.unprotect_rtcp(&mut srtcp), Ok(plain.len()));
        assert_eq!(srtcp[..plain.len()].to_vec(), plain);
    }

    #[test]
    fn the_32_bit_suite_truncates_the_srtp_tag_but_not_the_srtcp_tag() {
        let mut sender = SrtpSender::new(SrtpSuite::AesCm128HmacSha1_32, &rfc_master());
        let mut buf = hex(RTP_PLAIN);
        let len = buf.len();
        buf.resize(len + TAG_32, 0);
        assert_eq!(sender.protect_rtp(&mut buf, len), Ok(len + TAG_32));
        // The same keystream and the first 32 bits of the same HMAC as the 80-bit suite.
        assert_eq!(buf, hex(SRTP_80)[..len + TAG_32].to_vec());
        let mut receiver = SrtpReceiver::new(SrtpSuite::AesCm128HmacSha1_32, &rfc_master());
        assert_eq!(receiver.unprotect_rtp(&mut buf.clone()), Ok(len));
        // An 80-bit receiver does not accept it.
        let mut wrong = SrtpReceiver::new(SrtpSuite::AesCm128HmacSha1_80, &rfc_master());
        assert_eq!(wrong.unprotect_rtp(&mut buf), Err(SrtpError::AuthFailed));

        let mut srtcp = hex(SRTCP_80);
        assert_eq!(receiver.unprotect_rtcp(&mut srtcp), Ok(24));
        let mut out = [0u8; 64];
        out[..24].copy_from_slice(&hex(RTCP_PLAIN));
        assert_eq!(sender.protect_rtcp(&mut out, 24), Ok(24 + 14));
    }

    fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 0x00];
        p.extend(seq.to_be_bytes());
        p.extend(u32::from(seq).wrapping_mul(160).to_be_bytes());
        p.extend(ssrc.to_be_bytes());
        p.extend(payload);
        p
    }

    fn protect(sender: &mut SrtpSender, plain: &[u8]) -> Vec<u8> {
        let mut buf = plain.to_vec();
        buf.resize(plain.len() + MAX_OVERHEAD, 0);
        let n = sender.protect_rtp(&mut buf, plain.len()).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn round_trip_across_a_sequence_wrap_tracks_the_rollover_counter() {
        let mut sender = SrtpSender::new(SrtpSuite::AesCm128HmacSha1_80, &master(7));
        let mut receiver = SrtpReceiver::new(SrtpSuite::AesCm128HmacSha1_80, &master(7));
        let mut seq: u16 = 65_500;
        for n in 0..200u32 {
            let payload = n.to_be_bytes();
            let plain = rtp(seq, 0x1234, &payload);
            let mut wire = protect(&mut sender, &plain);
            assert_ne!(wire[12..16], payload, "payload must be encrypted");
            let len = receiver.unprotect_rtp(&mut wire).unwrap();
            assert_eq!(wire[..len], plain[..], "packet {n}, seq {seq}");
            seq = seq.wrapping_add(1);
        }
        assert_eq!(receiver.stream.map(|s| s.roc), Some(1));
        assert_eq!(sender.stream.map(|s| s.roc), Some(1));

        // Reordering across the wrap: 65535 (ROC 0) arriving after 0 (ROC 1) still decrypts.
        let mut sender = SrtpSender::new(SrtpSuite::AesCm128HmacSha1_80, &master(8));
        let mut receiver = SrtpReceiver::new(SrtpSuite::AesCm128HmacSha1_80, &master(8));
        let early = protect(&mut sender, &rtp(65_534, 9, b"a"));
        let late = protect(&mut sender, &rtp(65_535, 9, b"b"));
        let wrapped = protect(&mut sender, &rtp(0, 9, b"c"));
        for (mut wire, payload) in [(early, b"a"), (wrapped, b"c"), (late, b"b")] {
            let len = receiver.unprotect_rtp(&mut wire).unwrap();
            assert_eq!(&wire[12..len], payload);
        }
        // A packet the sender numbered with ROC 1 but the receiver would read as ROC 0 fails.
        let mut forged_roc = rtp(1, 9, b"d");
        forged_roc.resize(forged_roc.len() + TAG_80, 0);
        assert_eq!(
            receiver.unprotect_rtp(&mut forged_roc),
            Err(SrtpError::AuthFailed)
        );
    }

    #[test]
    fn tampered_packets_and_wrong_keys_are_rejected_and_counted() {
        let mut sender = SrtpSender::new(SrtpSuite::AesCm128HmacSha1_80, &master(1));
        let mut receiver = SrtpReceiver::new(SrtpSuite::AesCm128HmacSha1_80, &master(1));
        let wire = protect(&mut sender, &rtp(10, 5, b"hello"));
        for at in [1, 3, 8, 12, wire.len() - 1] {
            let mut bad = wire.clone();
            bad[at] ^= 0x01;
            assert_eq!(receiver.unprotect_rtp(&mut bad), Err(SrtpError::AuthFailed));
        }
        let mut other = SrtpReceiver::new(SrtpSuite::AesCm128HmacSha1_80, &master(2));
        assert_eq!(
            other.unprotect_rtp(&mut wire.clone()),
            Err(SrtpError::AuthFailed)
        );
        // A forged packet did not start a stream: the real one still decrypts.
        assert_eq!(
            receiver.unprotect_rtp(&mut wire.clone()),
            Ok(wire.len() - 10)
        );
        assert_eq!(receiver.stats().auth_failures, 5);
        assert_eq!(receiver.stats().rtp_packets, 1);
        assert_eq!(
            receiver.unprotect_rtp(&mut [0x80, 0, 0]),
            Err(SrtpError::TooShort { len: 3 })
        );
        let mut not_rtp = wire.clone();
        not_rtp[0] = 0x40;
        assert_eq!(
            receiver.unprotect_rtp(&mut not_rtp),
            Err(SrtpError::Malformed)
        );
        assert_eq!(receiver.stats().malformed, 2);

        let mut rtcp = [0u8; 64];
        rtcp[..24].copy_from_slice(&hex(RTCP_PLAIN));
        let n = sender.protect_rtcp(&mut rtcp, 24).unwrap();
        let mut bad = rtcp[..n].to_vec();
        bad[10] ^= 0x80;
        assert_eq!(
            receiver.unprotect_rtcp(&mut bad),
            Err(SrtpError::AuthFailed)
        );
        // Clearing the E-bit is caught by the tag as well.
        let mut bad = rtcp[..n].to_vec();
        bad[24] &= 0x7f;
        assert_eq!(
            receiver.unprotect_rtcp(&mut bad),
            Err(SrtpError::AuthFailed)
        );
        assert_eq!(receiver.unprotect_rtcp(&mut rtcp[..n]), Ok(24));
        assert_eq!(rtcp[..24].to_vec(), hex(RTCP_PLAIN));
        // SRTCP drops are counted apart from SRTP's.
        let stats = receiver.stats();
        assert_eq!((stats.auth_failures, stats.rtcp_auth_failures), (5, 2));
        assert_eq!((stats.rtp_packets, stats.rtcp_packets), (1, 1));
    }

    #[test]
    fn replays_and_packets_older_than_the_window_are_rejected() {
        let mut sender = SrtpSender::new(SrtpSuite::AesCm128HmacSha1_32, &master(3));
        let mut receiver = SrtpReceiver::new(SrtpSuite::AesCm128HmacSha1_32, &master(3));
        let packets: Vec<Vec<u8>> = (0..100u16)
            .map(|seq| protect(&mut sender, &rtp(1000 + seq, 77, b"x")))
            .collect();
        // 0, then 99, then 40 (59 behind: inside the window), then 20 (79 behind: too old).
        assert!(receiver.unprotect_rtp(&mut packets[0].clone()).is_ok());
        assert!(receiver.unprotect_rtp(&mut packets[99].clone()).is_ok());
        assert!(receiver.unprotect_rtp(&mut packets[40].clone()).is_ok());
        for replay in [99, 40, 20] {
            assert!(matches!(
                receiver.unprotect_rtp(&mut packets[replay].clone()),
                Err(SrtpError::Replayed { .. })
            ));
        }
        assert!(receiver.unprotect_rtp(&mut packets[41].clone()).is_ok());
        assert_eq!(receiver.stats().replayed, 3);

        let mut rtcp = [0u8; 64];
        rtcp[..24].copy_from_slice(&hex(RTCP_PLAIN));
        let n = sender.protect_rtcp(&mut rtcp, 24).unwrap();
        let first = rtcp[..n].to_vec();
        assert!(receiver.unprotect_rtcp(&mut first.clone()).is_ok());
        assert!(matches!(
            receiver.unprotect_rtcp(&mut first.clone()),
            Err(SrtpError::Replayed { index: 0 })
        ));
        assert_eq!(
            (receiver.stats().replayed, receiver.stats().rtcp_replayed),
            (3, 1)
        );
    }

    #[test]
    fn a_new_ssrc_starts_a_new_stream_and_headers_with_csrcs_and_extensions_stay_clear() {
        let mut sender = SrtpSender::new(SrtpSuite::AesCm128HmacSha1_80, &master(4));
        let mut receiver = SrtpReceiver::new(SrtpSuite::AesCm128HmacSha1_80, &master(4));
        // One CSRC and a one-word extension: 12 + 4 + 4 + 4 header bytes.
        let mut plain = vec![0x91, 0x00, 0x00, 0x05, 0, 0, 0, 1, 0, 0, 0, 2];
        plain.extend([0xaa; 4]);
        plain.extend([0xbe, 0xde, 0x00, 0x01, 0x10, 0x7f, 0, 0]);
        plain.extend(b"payload");
        let mut wire = protect(&mut sender, &plain);
        assert_eq!(wire[..24], plain[..24], "the header is not encrypted");
        assert_ne!(wire[24..31], plain[24..31]);
        let len = receiver.unprotect_rtp(&mut wire).unwrap();
        assert_eq!(wire[..len], plain[..]);
        // The phone switches SSRC and starts at a low sequence number.
        let mut wire = protect(&mut sender, &rtp(3, 0xdead, b"new"));
        let len = receiver.unprotect_rtp(&mut wire).unwrap();
        assert_eq!(&wire[12..len], b"new");
        // An extension longer than the packet is malformed, not a panic.
        let mut bad = vec![
            0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0xff, 0xff,
        ];
        bad.extend([0u8; 10]);
        assert_eq!(receiver.unprotect_rtp(&mut bad), Err(SrtpError::Malformed));
    }

    #[test]
    fn short_buffers_and_key_lengths_are_errors() {
        let mut sender = SrtpSender::new(SrtpSuite::AesCm128HmacSha1_80, &master(5));
        let mut buf = rtp(1, 1, b"abc");
        let len = buf.len();
        assert_eq!(
            sender.protect_rtp(&mut buf, len),
            Err(SrtpError::BufferTooSmall {
                needed: len + 10,
                len
            })
        );
        let mut rtcp = [0x81u8; 20];
        assert!(matches!(
            sender.protect_rtcp(&mut rtcp, 8),
            Err(SrtpError::BufferTooSmall { .. })
        ));
        assert_eq!(
            SrtpMasterKey::from_slice(&[0; 29]),
            Err(SrtpError::KeyLength { len: 29 })
        );
        assert_eq!(format!("{:?}", master(0x41)), "SrtpMasterKey(<redacted>)");
        assert_eq!(SrtpError::AuthFailed.blame(), Blame::Peer);
    }

    #[test]
    fn index_estimation_follows_rfc_3711_3_3_1() {
        assert_eq!(estimate_roc(0, 100, 101), Some(0));
        assert_eq!(
            estimate_roc(0, 100, 65_000),
            None,
            "before the first packet"
        );
        assert_eq!(estimate_roc(3, 100, 65_000), Some(2));
        assert_eq!(estimate_roc(3, 65_000, 100), Some(4));
        assert_eq!(estimate_roc(3, 65_000, 64_000), Some(3));
        assert_eq!(estimate_roc(3, 40_000, 40_500), Some(3));
        assert_eq!(estimate_roc(3, 40_000, 7_232), Some(3));
        assert_eq!(estimate_roc(3, 40_000, 7_231), Some(4));
    }
}
