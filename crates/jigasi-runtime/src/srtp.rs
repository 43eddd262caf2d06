//! SDES-SRTP on the phone leg, from the SIP account's configuration (jigasi-behaviour.md §1.2:
//! `DEFAULT_ENCRYPTION`, `SAVP_OPTION`, `ENCRYPTION_PROTOCOL*`, `SDES_CIPHER_SUITES`) to what
//! one call needs: the offer/answer policy, the suites and a fresh master key.

use jigasi_config::{SavpOption, SrtpConfig};
use jigasi_sip_core::sdp::{SdesKey, SdesSuite, SrtpPolicy};
use jigasi_types::Secret;
use rand::Rng;

/// The policy: off unless `DEFAULT_ENCRYPTION=true` and SDES is enabled as a protocol
/// (`ENCRYPTION_PROTOCOL_STATUS.SDES=true`). `SAVP_OPTION=1` makes it mandatory (we offer
/// `RTP/SAVP` and refuse plain RTP); `0` and `2` use SRTP whenever the phone does (we offer
/// `RTP/AVP` with crypto lines, best-effort SRTP; jitsi-desktop's `2` offers two media lines
/// instead, which we do not).
pub(crate) fn policy(srtp: Option<&SrtpConfig>) -> SrtpPolicy {
    match srtp.filter(|s| s.sdes_enabled()).map(|s| s.savp) {
        None => SrtpPolicy::Off,
        Some(SavpOption::Mandatory) => SrtpPolicy::Required,
        Some(SavpOption::Off | SavpOption::Optional) => SrtpPolicy::Optional,
    }
}

/// `SDES_CIPHER_SUITES` as the suites we implement, in the configured order; when none is
/// configured (or none we implement), both AES-CM-128 suites, the 80-bit tag first.
pub(crate) fn suites(srtp: Option<&SrtpConfig>) -> Vec<SdesSuite> {
    let mut suites: Vec<SdesSuite> = Vec::new();
    let names = srtp.iter().flat_map(|s| s.sdes_cipher_suites.iter());
    for suite in names.filter_map(|n| SdesSuite::from_name(&n.trim().to_ascii_uppercase())) {
        if !suites.contains(&suite) {
            suites.push(suite);
        }
    }
    if suites.is_empty() {
        suites = vec![
            SdesSuite::AesCm128HmacSha1_80,
            SdesSuite::AesCm128HmacSha1_32,
        ];
    }
    suites
}

/// A fresh master key and salt for one call when SRTP may be used (from a CSPRNG: the caller
/// passes one seeded by the OS).
pub(crate) fn key(policy: SrtpPolicy, rng: &mut impl Rng) -> Option<Secret<SdesKey>> {
    if policy == SrtpPolicy::Off {
        return None;
    }
    let mut key: SdesKey = [0; 30];
    rng.fill(&mut key[..]);
    Some(Secret::new(key))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use jigasi_config::EncryptionProtocol;
    use rand::SeedableRng;

    use super::*;

    fn sdes(enabled: bool, savp: SavpOption, sdes_status: bool) -> SrtpConfig {
        SrtpConfig {
            enabled,
            savp,
            protocols: vec![EncryptionProtocol {
                name: "SDES".into(),
                priority: 1,
                enabled: sdes_status,
            }],
            sdes_cipher_suites: Vec::new(),
        }
    }

    #[test]
    fn the_policy_follows_jigasis_switches() {
        assert_eq!(policy(None), SrtpPolicy::Off);
        assert_eq!(policy(Some(&SrtpConfig::default())), SrtpPolicy::Off);
        // docker-jitsi-meet's SRTP block: DEFAULT_ENCRYPTION, SAVP_OPTION=1, SDES on.
        assert_eq!(
            policy(Some(&sdes(true, SavpOption::Mandatory, true))),
            SrtpPolicy::Required
        );
        assert_eq!(
            policy(Some(&sdes(true, SavpOption::Off, true))),
            SrtpPolicy::Optional
        );
        assert_eq!(
            policy(Some(&sdes(true, SavpOption::Optional, true))),
            SrtpPolicy::Optional
        );
        // Either switch off: plain RTP.
        assert_eq!(
            policy(Some(&sdes(false, SavpOption::Mandatory, true))),
            SrtpPolicy::Off
        );
        assert_eq!(
            policy(Some(&sdes(true, SavpOption::Mandatory, false))),
            SrtpPolicy::Off
        );
    }

    #[test]
    fn cipher_suites_keep_their_order_and_default_to_both() {
        let mut config = sdes(true, SavpOption::Optional, true);
        assert_eq!(
            suites(Some(&config)),
            vec![
                SdesSuite::AesCm128HmacSha1_80,
                SdesSuite::AesCm128HmacSha1_32
            ]
        );
        config.sdes_cipher_suites = vec![
            " aes_cm_128_hmac_sha1_32".into(),
            "AES_256_CM_HMAC_SHA1_80".into(),
            "AES_CM_128_HMAC_SHA1_32".into(),
        ];
        assert_eq!(suites(Some(&config)), vec![SdesSuite::AesCm128HmacSha1_32]);
        config.sdes_cipher_suites = vec!["F8_128_HMAC_SHA1_80".into()];
        assert_eq!(suites(Some(&config)).len(), 2);
    }

    #[test]
    fn a_key_per_call_only_when_srtp_may_be_used() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert!(key(SrtpPolicy::Off, &mut rng).is_none());
        let a = key(SrtpPolicy::Optional, &mut rng).unwrap();
        let b = key(SrtpPolicy::Required, &mut rng).unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.expose(), &[0; 30]);
        assert_eq!(format!("{a:?}"), "<redacted>");
    }
}
