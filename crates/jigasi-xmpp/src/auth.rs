//! SASL client mechanisms (RFC 6120 §6): choice and message flow.
//!
//! SCRAM (RFC 5802 / RFC 7677) is driven here rather than by `sasl::client::mechanisms::Scram`,
//! because that type draws its client nonce from `getrandom` and offers no public way to inject
//! one (its `new_with_nonce` is `#[cfg(test)]` in sasl 0.5.2). The message flow below uses the
//! sasl crate's hash, HMAC and PBKDF2 primitives (`sasl::common::scram::ScramProvider`) with a
//! nonce drawn from the session's injected RNG, so a seeded session is fully deterministic.
//! PLAIN (RFC 4616) and ANONYMOUS (RFC 4505) are trivial and written out directly.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sasl::common::Password;
use sasl::common::scram::{ScramProvider, Sha1, Sha256};

use crate::config::Auth;
use crate::error::PeerMisbehaved;

/// A SASL mechanism we can run, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Mechanism {
    ScramSha256,
    ScramSha1,
    Plain,
    Anonymous,
}

impl Mechanism {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha1 => "SCRAM-SHA-1",
            Self::Plain => "PLAIN",
            Self::Anonymous => "ANONYMOUS",
        }
    }
}

/// Picks the best mechanism that the server offers and the config allows:
/// SCRAM-SHA-256 > SCRAM-SHA-1 > PLAIN (only if `plain_allowed`) for passwords, ANONYMOUS for
/// [`Auth::Anonymous`].
pub(crate) fn choose(auth: &Auth, offered: &[String], plain_allowed: bool) -> Option<Mechanism> {
    let offers = |m: Mechanism| offered.iter().any(|o| o.eq_ignore_ascii_case(m.name()));
    let candidates: &[Mechanism] = match auth {
        Auth::Anonymous => &[Mechanism::Anonymous],
        Auth::Password { .. } if plain_allowed => &[
            Mechanism::ScramSha256,
            Mechanism::ScramSha1,
            Mechanism::Plain,
        ],
        Auth::Password { .. } => &[Mechanism::ScramSha256, Mechanism::ScramSha1],
    };
    candidates.iter().copied().find(|m| offers(*m))
}

/// One running SASL exchange.
pub(crate) struct SaslClient {
    mechanism: Mechanism,
    username: String,
    password: String,
    nonce: String,
    state: ScramState,
}

enum ScramState {
    Initial,
    SentFirst { client_first_bare: String },
    SentFinal { server_signature: Vec<u8> },
}

impl SaslClient {
    /// Starts `mechanism` for `auth`; `nonce` is the SCRAM client nonce (printable, no comma).
    pub(crate) fn new(mechanism: Mechanism, auth: &Auth, nonce: String) -> Self {
        let (username, password) = match auth {
            Auth::Anonymous => (String::new(), String::new()),
            Auth::Password { username, password } => (username.clone(), password.expose().clone()),
        };
        Self {
            mechanism,
            username,
            password,
            nonce,
            state: ScramState::Initial,
        }
    }

    pub(crate) fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The initial response (RFC 6120 §6.4.2).
    pub(crate) fn initial(&mut self) -> Vec<u8> {
        match self.mechanism {
            Mechanism::Anonymous => Vec::new(),
            Mechanism::Plain => {
                let mut out = vec![0];
                out.extend_from_slice(self.username.as_bytes());
                out.push(0);
                out.extend_from_slice(self.password.as_bytes());
                out
            }
            Mechanism::ScramSha1 | Mechanism::ScramSha256 => {
                let client_first_bare = format!("n={},r={}", saslname(&self.username), self.nonce);
                let out = format!("n,,{client_first_bare}").into_bytes();
                self.state = ScramState::SentFirst { client_first_bare };
                out
            }
        }
    }

    /// Answers a server challenge.
    pub(crate) fn challenge(&mut self, challenge: &[u8]) -> Result<Vec<u8>, PeerMisbehaved> {
        match self.mechanism {
            Mechanism::ScramSha1 => self.scram_final::<Sha1>(challenge),
            Mechanism::ScramSha256 => self.scram_final::<Sha256>(challenge),
            Mechanism::Plain | Mechanism::Anonymous => Err(PeerMisbehaved::BadSasl(
                "challenge for a mechanism without one",
            )),
        }
    }

    /// Checks the additional data of `<success/>` (the SCRAM server signature).
    pub(crate) fn success(&mut self, data: &[u8]) -> Result<(), PeerMisbehaved> {
        match (&self.mechanism, &self.state) {
            (Mechanism::Plain | Mechanism::Anonymous, _) => Ok(()),
            (_, ScramState::SentFinal { server_signature }) => {
                let text = std::str::from_utf8(data)
                    .map_err(|_| PeerMisbehaved::BadSasl("server-final is not UTF-8"))?;
                let verifier = attribute(text, 'v')
                    .ok_or(PeerMisbehaved::BadSasl("server-final without v="))?;
                let signature = BASE64
                    .decode(verifier)
                    .map_err(|_| PeerMisbehaved::BadSasl("server signature is not base64"))?;
                if &signature == server_signature {
                    Ok(())
                } else {
                    Err(PeerMisbehaved::ServerSignatureMismatch)
                }
            }
            (_, ScramState::Initial | ScramState::SentFirst { .. }) => Err(
                PeerMisbehaved::BadSasl("success before the SCRAM exchange finished"),
            ),
        }
    }

    fn scram_final<S: ScramProvider>(
        &mut self,
        challenge: &[u8],
    ) -> Result<Vec<u8>, PeerMisbehaved> {
        let ScramState::SentFirst { client_first_bare } = &self.state else {
            return Err(PeerMisbehaved::BadSasl("unexpected SCRAM challenge"));
        };
        let server_first = std::str::from_utf8(challenge)
            .map_err(|_| PeerMisbehaved::BadSasl("server-first is not UTF-8"))?;
        if server_first.starts_with("m=") {
            return Err(PeerMisbehaved::BadSasl("mandatory SCRAM extension"));
        }
        let nonce = attribute(server_first, 'r').ok_or(PeerMisbehaved::BadSasl("no nonce"))?;
        if !nonce.starts_with(self.nonce.as_str()) || nonce.len() == self.nonce.len() {
            return Err(PeerMisbehaved::BadSasl("server nonce does not extend ours"));
        }
        let salt = attribute(server_first, 's')
            .and_then(|s| BASE64.decode(s).ok())
            .ok_or(PeerMisbehaved::BadSasl("no or bad salt"))?;
        let iterations: u32 = attribute(server_first, 'i')
            .and_then(|i| i.parse().ok())
            .filter(|i| (1..=MAX_SCRAM_ITERATIONS).contains(i))
            .ok_or(PeerMisbehaved::BadSasl("no or bad iteration count"))?;

        let bad_key = |_| PeerMisbehaved::BadSasl("key derivation failed");
        let salted = S::derive(&Password::Plain(self.password.clone()), &salt, iterations)
            .map_err(|_| PeerMisbehaved::BadSasl("key derivation failed"))?;
        let client_key = S::hmac(b"Client Key", &salted).map_err(bad_key)?;
        let server_key = S::hmac(b"Server Key", &salted).map_err(bad_key)?;
        // "biws" is base64("n,,"): no channel binding, no authzid.
        let client_final_bare = format!("c=biws,r={nonce}");
        let auth_message = format!("{client_first_bare},{server_first},{client_final_bare}");
        let stored_key = S::hash(&client_key);
        let client_signature = S::hmac(auth_message.as_bytes(), &stored_key).map_err(bad_key)?;
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_signature = S::hmac(auth_message.as_bytes(), &server_key).map_err(bad_key)?;
        self.state = ScramState::SentFinal { server_signature };
        Ok(format!("{client_final_bare},p={}", BASE64.encode(proof)).into_bytes())
    }
}

/// Generates a SCRAM client nonce from the session RNG: 18 random bytes, base64 (24 printable
/// characters, never a comma).
pub(crate) fn nonce(rng: &mut impl rand::RngCore) -> String {
    let mut bytes = [0u8; 18];
    rng.fill_bytes(&mut bytes);
    BASE64.encode(bytes)
}

/// The value of `key=` in a SCRAM attribute list.
fn attribute(message: &str, key: char) -> Option<&str> {
    message.split(',').find_map(|part| {
        let mut chars = part.chars();
        (chars.next() == Some(key) && chars.next() == Some('=')).then(|| &part[2..])
    })
}

/// RFC 5802 §5.1 `saslname`: `=` and `,` escaped.
fn saslname(username: &str) -> String {
    username.replace('=', "=3D").replace(',', "=2C")
}

/// Refuse iteration counts that would make PBKDF2 a denial of service (Prosody uses 4096 to
/// 10 000).
const MAX_SCRAM_ITERATIONS: u32 = 1_000_000;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jigasi_types::Secret;

    fn password(username: &str, password: &str) -> Auth {
        Auth::Password {
            username: username.into(),
            password: Secret::new(password.into()),
        }
    }

    #[test]
    fn scram_sha1_matches_rfc5802_example() {
        // RFC 5802 §5.
        let mut client = SaslClient::new(
            Mechanism::ScramSha1,
            &password("user", "pencil"),
            "fyko+d2lbbFgONRv9qkxdawL".into(),
        );
        assert_eq!(client.initial(), b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        let response = client
            .challenge(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
            .unwrap();
        assert_eq!(
            String::from_utf8(response).unwrap(),
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        client.success(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=").unwrap();
    }

    #[test]
    fn scram_sha256_matches_rfc7677_example() {
        // RFC 7677 §3.
        let mut client = SaslClient::new(
            Mechanism::ScramSha256,
            &password("user", "pencil"),
            "rOprNGfwEbeRWgbNEkqO".into(),
        );
        assert_eq!(client.initial(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let response = client
            .challenge(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                  s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            )
            .unwrap();
        assert_eq!(
            String::from_utf8(response).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        client
            .success(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
    }

    #[test]
    fn scram_rejects_forged_server_signature_and_foreign_nonce() {
        let mut client = SaslClient::new(
            Mechanism::ScramSha1,
            &password("user", "pencil"),
            "fyko+d2lbbFgONRv9qkxdawL".into(),
        );
        client.initial();
        assert_eq!(
            client
                .challenge(b"r=othernonce,s=QSXCR+Q6sek8bf92,i=4096")
                .unwrap_err(),
            PeerMisbehaved::BadSasl("server nonce does not extend ours")
        );
        client
            .challenge(b"r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=4096")
            .unwrap();
        assert_eq!(
            client
                .success(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
                .unwrap_err(),
            PeerMisbehaved::ServerSignatureMismatch
        );
    }

    #[test]
    fn scram_escapes_username_and_rejects_bad_iterations() {
        let mut client = SaslClient::new(Mechanism::ScramSha1, &password("a=b,c", "p"), "n".into());
        assert_eq!(client.initial(), b"n,,n=a=3Db=2Cc,r=n");
        assert!(client.challenge(b"r=nX,s=QSXC,i=0").is_err());
    }

    #[test]
    fn plain_and_anonymous_payloads() {
        let mut plain = SaslClient::new(Mechanism::Plain, &password("jigasi", "pw"), String::new());
        assert_eq!(plain.initial(), b"\0jigasi\0pw");
        assert!(plain.challenge(b"x").is_err());
        let mut anonymous = SaslClient::new(Mechanism::Anonymous, &Auth::Anonymous, String::new());
        assert!(anonymous.initial().is_empty());
        assert!(anonymous.success(b"").is_ok());
    }

    #[test]
    fn choice_prefers_scram_and_gates_plain() {
        let offered = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let pw = password("u", "p");
        let all = offered(&["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "ANONYMOUS"]);
        assert_eq!(choose(&pw, &all, false), Some(Mechanism::ScramSha256));
        assert_eq!(
            choose(&pw, &offered(&["PLAIN", "SCRAM-SHA-1"]), false),
            Some(Mechanism::ScramSha1)
        );
        assert_eq!(choose(&pw, &offered(&["PLAIN"]), false), None);
        assert_eq!(
            choose(&pw, &offered(&["PLAIN"]), true),
            Some(Mechanism::Plain)
        );
        assert_eq!(
            choose(&Auth::Anonymous, &all, false),
            Some(Mechanism::Anonymous)
        );
        assert_eq!(choose(&Auth::Anonymous, &offered(&["PLAIN"]), true), None);
    }

    #[test]
    fn nonce_is_deterministic_per_seed_and_printable() {
        use rand::SeedableRng;
        let a = nonce(&mut rand::rngs::StdRng::seed_from_u64(7));
        let b = nonce(&mut rand::rngs::StdRng::seed_from_u64(7));
        assert_eq!(a, b);
        assert_eq!(a.len(), 24);
        assert!(!a.contains(','));
    }
}
