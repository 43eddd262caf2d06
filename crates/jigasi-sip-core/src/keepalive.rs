//! When to send a keep-alive toward the registrar, and what its answer means.
//!
//! Jigasi's account keys `KEEP_ALIVE_METHOD` (`OPTIONS`, `CRLF` or `REGISTER`) and
//! `KEEP_ALIVE_INTERVAL` (seconds) pick one of three methods:
//!
//! - **OPTIONS**: an `OPTIONS` for our own address of record, sent through the registrar. While
//!   the registrar holds our binding it relays the request to us and our 200 comes back; once
//!   the binding is gone (a registrar restart loses an in-memory location table) it answers
//!   404 (or 480/410/604) itself, and we re-REGISTER at once. No answer, or a transport error,
//!   counts as a registration failure and also triggers a re-REGISTER.
//! - **CRLF**: a double CRLF on the connection (RFC 5626 §4.4.1; on UDP a `CRLFCRLF` datagram).
//!   It keeps NAT bindings and connections open; only a failure to send is seen.
//! - **REGISTER**: a registration refresh every interval.
//!
//! The [`KeepAlivePolicy`] runs only while the account is registered; the SIP adapter sends what
//! it asks for and feeds [`RegistrationPolicy::handle_keep_alive`](crate::RegistrationPolicy::handle_keep_alive)
//! with its verdict.

use std::time::{Duration, Instant};

use crate::registration::RegistrationState;

/// The keep-alive method (`KEEP_ALIVE_METHOD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeepAliveMethod {
    /// `OPTIONS` for our address of record through the registrar (Jigasi's default).
    #[default]
    Options,
    /// A double CRLF on the connection to the registrar (RFC 5626 §4.4.1).
    Crlf,
    /// A REGISTER refresh every interval.
    Register,
}

/// Keep-alive settings of the SIP account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeepAliveConfig {
    /// `KEEP_ALIVE_METHOD`, default [`KeepAliveMethod::Options`].
    pub method: KeepAliveMethod,
    /// `KEEP_ALIVE_INTERVAL`; `None` (or zero) turns OPTIONS and CRLF keep-alives off. For
    /// [`KeepAliveMethod::Register`] an unset interval means 25 s, as in jitsi-desktop.
    pub interval: Option<Duration>,
}

/// jitsi-desktop's REGISTER keep-alive interval when `KEEP_ALIVE_INTERVAL` is unset.
pub const DEFAULT_REGISTER_INTERVAL: Duration = Duration::from_secs(25);

impl KeepAliveConfig {
    /// The interval actually used; `None` when keep-alives are off.
    pub fn effective_interval(&self) -> Option<Duration> {
        match self.method {
            KeepAliveMethod::Register => Some(
                self.interval
                    .filter(|i| !i.is_zero())
                    .unwrap_or(DEFAULT_REGISTER_INTERVAL),
            ),
            KeepAliveMethod::Options | KeepAliveMethod::Crlf => {
                self.interval.filter(|i| !i.is_zero())
            }
        }
    }
}

/// What the adapter must do when [`KeepAlivePolicy::handle_timeout`] fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAliveAction {
    /// Send `OPTIONS` for our address of record to the registrar, then report a
    /// [`ProbeOutcome`].
    SendOptions,
    /// Send a double CRLF to the registrar, then report [`ProbeOutcome::Sent`] or
    /// [`ProbeOutcome::TransportFailed`].
    SendCrlf,
    /// Refresh the registration now
    /// ([`RegistrationPolicy::refresh_now`](crate::RegistrationPolicy::refresh_now)); no
    /// outcome is reported, the next successful REGISTER re-arms the keep-alive.
    Register,
}

/// How one keep-alive ended, as the adapter saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The OPTIONS got a final response.
    Answered {
        /// Its status code.
        status: u16,
    },
    /// The CRLF was written (nothing answers it on UDP).
    Sent,
    /// The OPTIONS got no final response in time.
    TimedOut,
    /// The keep-alive could not be sent (connection refused or lost).
    TransportFailed,
}

/// What a keep-alive says about the registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeVerdict {
    /// The registrar is reachable and (for OPTIONS) still routes our address of record to us.
    Alive,
    /// The registrar no longer has our binding: re-REGISTER at once.
    BindingLost {
        /// The status it answered (404, 410, 480 or 604).
        status: u16,
    },
    /// The registrar (or the path through it back to us) did not answer or could not be
    /// reached: a registration failure, re-REGISTER at once.
    Unreachable {
        /// What went wrong.
        cause: Unreachable,
    },
}

/// Why a keep-alive counts as a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// No final response.
    TimedOut,
    /// Could not send.
    Transport,
    /// The registrar or a proxy answered with a status that says the path is broken (408 or
    /// 5xx).
    Status(u16),
}

impl ProbeOutcome {
    /// What this outcome means. A 2xx (our own answer relayed back) is alive; 404, 410, 480 and
    /// 604 say the registrar has no binding for us; 408 and 5xx, a timeout or a transport
    /// failure are failures. Any other answer (e.g. 401/403/405 from a registrar that does not
    /// relay OPTIONS) still shows the registrar is reachable and counts as alive.
    pub fn verdict(self) -> ProbeVerdict {
        match self {
            ProbeOutcome::Sent => ProbeVerdict::Alive,
            ProbeOutcome::TimedOut => ProbeVerdict::Unreachable {
                cause: Unreachable::TimedOut,
            },
            ProbeOutcome::TransportFailed => ProbeVerdict::Unreachable {
                cause: Unreachable::Transport,
            },
            ProbeOutcome::Answered { status } => match status {
                404 | 410 | 480 | 604 => ProbeVerdict::BindingLost { status },
                408 | 500..=599 => ProbeVerdict::Unreachable {
                    cause: Unreachable::Status(status),
                },
                _ => ProbeVerdict::Alive,
            },
        }
    }
}

/// Decides when to send keep-alives. Armed while the account is registered, one keep-alive in
/// flight at most.
///
/// Inputs: [`handle_registration`](Self::handle_registration) after every registration change,
/// [`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout), and
/// [`handle_outcome`](Self::handle_outcome) when an OPTIONS or CRLF keep-alive ends.
#[derive(Debug)]
pub struct KeepAlivePolicy {
    method: KeepAliveMethod,
    interval: Option<Duration>,
    next: Option<Instant>,
    in_flight: bool,
}

impl KeepAlivePolicy {
    /// A disarmed policy; it arms at the first successful registration.
    pub fn new(config: KeepAliveConfig) -> Self {
        Self {
            method: config.method,
            interval: config.effective_interval(),
            next: None,
            in_flight: false,
        }
    }

    /// The registration state changed (or a REGISTER ended) at `now`. A fresh registration arms
    /// the keep-alive one interval later; any state other than registered disarms it.
    pub fn handle_registration(&mut self, now: Instant, state: &RegistrationState) {
        self.in_flight = false;
        self.next = match (state, self.interval) {
            (RegistrationState::Registered { .. }, Some(interval)) => Some(now + interval),
            (
                RegistrationState::Registered { .. }
                | RegistrationState::NotRequired
                | RegistrationState::Registering
                | RegistrationState::Retrying { .. }
                | RegistrationState::Rejected { .. }
                | RegistrationState::Unregistered,
                _,
            ) => None,
        };
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next
    }

    /// Time has reached [`poll_timeout`](Self::poll_timeout): what to send, if anything.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<KeepAliveAction> {
        match self.next {
            Some(due) if due <= now && !self.in_flight => {
                self.next = None;
                match self.method {
                    KeepAliveMethod::Options => {
                        self.in_flight = true;
                        Some(KeepAliveAction::SendOptions)
                    }
                    KeepAliveMethod::Crlf => {
                        self.in_flight = true;
                        Some(KeepAliveAction::SendCrlf)
                    }
                    // The REGISTER's own outcome re-arms us through `handle_registration`.
                    KeepAliveMethod::Register => Some(KeepAliveAction::Register),
                }
            }
            Some(_) | None => None,
        }
    }

    /// The keep-alive sent after [`handle_timeout`](Self::handle_timeout) ended. Returns the
    /// verdict to pass to the registration policy, or `None` for an outcome nobody waited for.
    /// An alive registrar schedules the next keep-alive one interval later; otherwise the
    /// keep-alive stays off until the registration succeeds again.
    pub fn handle_outcome(&mut self, now: Instant, outcome: ProbeOutcome) -> Option<ProbeVerdict> {
        if !self.in_flight {
            return None;
        }
        self.in_flight = false;
        let verdict = outcome.verdict();
        self.next = match verdict {
            ProbeVerdict::Alive => self.interval.map(|interval| now + interval),
            ProbeVerdict::BindingLost { .. } | ProbeVerdict::Unreachable { .. } => None,
        };
        Some(verdict)
    }

    /// How long to wait for an answer to an OPTIONS keep-alive before calling it
    /// [`ProbeOutcome::TimedOut`]: one interval, at most `limit` (the transaction timeout).
    pub fn probe_timeout(&self, limit: Duration) -> Duration {
        self.interval.map_or(limit, |interval| interval.min(limit))
    }
}

#[cfg(test)]
mod tests {
    // Tests take one real instant as the base of their virtual clock.
    #![allow(clippy::unwrap_used, clippy::disallowed_methods)]

    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn registered() -> RegistrationState {
        RegistrationState::Registered { expires: secs(600) }
    }

    fn policy(method: KeepAliveMethod, interval: Option<u64>) -> KeepAlivePolicy {
        KeepAlivePolicy::new(KeepAliveConfig {
            method,
            interval: interval.map(secs),
        })
    }

    #[test]
    fn effective_intervals_follow_jitsi_desktop() {
        let config = |method, interval: Option<u64>| KeepAliveConfig {
            method,
            interval: interval.map(secs),
        };
        assert_eq!(
            config(KeepAliveMethod::Options, None).effective_interval(),
            None
        );
        assert_eq!(
            config(KeepAliveMethod::Options, Some(0)).effective_interval(),
            None
        );
        assert_eq!(
            config(KeepAliveMethod::Crlf, Some(30)).effective_interval(),
            Some(secs(30))
        );
        assert_eq!(
            config(KeepAliveMethod::Register, None).effective_interval(),
            Some(secs(25))
        );
        assert_eq!(
            config(KeepAliveMethod::Register, Some(10)).effective_interval(),
            Some(secs(10))
        );
    }

    #[test]
    fn options_every_interval_while_registered() {
        let t0 = Instant::now();
        let mut p = policy(KeepAliveMethod::Options, Some(25));
        assert_eq!(p.poll_timeout(), None, "disarmed before registration");
        p.handle_registration(t0, &registered());
        assert_eq!(p.poll_timeout(), Some(t0 + secs(25)));
        assert_eq!(p.handle_timeout(t0 + secs(24)), None, "not yet due");
        assert_eq!(
            p.handle_timeout(t0 + secs(25)),
            Some(KeepAliveAction::SendOptions)
        );
        assert_eq!(p.poll_timeout(), None, "one in flight");
        assert_eq!(p.handle_timeout(t0 + secs(26)), None);
        let verdict = p.handle_outcome(t0 + secs(26), ProbeOutcome::Answered { status: 200 });
        assert_eq!(verdict, Some(ProbeVerdict::Alive));
        assert_eq!(p.poll_timeout(), Some(t0 + secs(51)));
    }

    #[test]
    fn keep_alive_off_without_interval() {
        let t0 = Instant::now();
        let mut p = policy(KeepAliveMethod::Options, None);
        p.handle_registration(t0, &registered());
        assert_eq!(p.poll_timeout(), None);
        assert_eq!(p.handle_timeout(t0 + secs(1000)), None);
    }

    #[test]
    fn lost_binding_and_failures_disarm_until_registered_again() {
        let t0 = Instant::now();
        for (outcome, verdict) in [
            (
                ProbeOutcome::Answered { status: 404 },
                ProbeVerdict::BindingLost { status: 404 },
            ),
            (
                ProbeOutcome::Answered { status: 480 },
                ProbeVerdict::BindingLost { status: 480 },
            ),
            (
                ProbeOutcome::TimedOut,
                ProbeVerdict::Unreachable {
                    cause: Unreachable::TimedOut,
                },
            ),
            (
                ProbeOutcome::TransportFailed,
                ProbeVerdict::Unreachable {
                    cause: Unreachable::Transport,
                },
            ),
            (
                ProbeOutcome::Answered { status: 503 },
                ProbeVerdict::Unreachable {
                    cause: Unreachable::Status(503),
                },
            ),
        ] {
            let mut p = policy(KeepAliveMethod::Options, Some(5));
            p.handle_registration(t0, &registered());
            assert_eq!(
                p.handle_timeout(t0 + secs(5)),
                Some(KeepAliveAction::SendOptions)
            );
            assert_eq!(p.handle_outcome(t0 + secs(6), outcome), Some(verdict));
            assert_eq!(p.poll_timeout(), None, "{outcome:?}");
            p.handle_registration(t0 + secs(7), &registered());
            assert_eq!(p.poll_timeout(), Some(t0 + secs(12)));
        }
    }

    #[test]
    fn other_answers_show_the_registrar_is_reachable() {
        for status in [200, 202, 401, 403, 405, 407, 486] {
            assert_eq!(
                ProbeOutcome::Answered { status }.verdict(),
                ProbeVerdict::Alive,
                "{status}"
            );
        }
    }

    #[test]
    fn crlf_is_alive_when_sent() {
        let t0 = Instant::now();
        let mut p = policy(KeepAliveMethod::Crlf, Some(10));
        p.handle_registration(t0, &registered());
        assert_eq!(
            p.handle_timeout(t0 + secs(10)),
            Some(KeepAliveAction::SendCrlf)
        );
        assert_eq!(
            p.handle_outcome(t0 + secs(10), ProbeOutcome::Sent),
            Some(ProbeVerdict::Alive)
        );
        assert_eq!(p.poll_timeout(), Some(t0 + secs(20)));
    }

    #[test]
    fn register_method_asks_for_a_refresh_each_interval() {
        let t0 = Instant::now();
        let mut p = policy(KeepAliveMethod::Register, None);
        p.handle_registration(t0, &registered());
        assert_eq!(p.poll_timeout(), Some(t0 + secs(25)));
        assert_eq!(
            p.handle_timeout(t0 + secs(25)),
            Some(KeepAliveAction::Register)
        );
        assert_eq!(p.poll_timeout(), None);
        // Nothing is in flight for the keep-alive itself: a stray outcome is ignored.
        assert_eq!(p.handle_outcome(t0 + secs(25), ProbeOutcome::Sent), None);
        p.handle_registration(t0 + secs(26), &registered());
        assert_eq!(p.poll_timeout(), Some(t0 + secs(51)));
    }

    #[test]
    fn not_registered_states_disarm() {
        let t0 = Instant::now();
        for state in [
            RegistrationState::Registering,
            RegistrationState::Rejected { status: 403 },
            RegistrationState::Unregistered,
            RegistrationState::NotRequired,
        ] {
            let mut p = policy(KeepAliveMethod::Options, Some(5));
            p.handle_registration(t0, &registered());
            p.handle_registration(t0, &state);
            assert_eq!(p.poll_timeout(), None, "{state:?}");
        }
    }

    #[test]
    fn probe_timeout_is_capped() {
        let p = policy(KeepAliveMethod::Options, Some(5));
        assert_eq!(p.probe_timeout(secs(32)), secs(5));
        let p = policy(KeepAliveMethod::Options, Some(60));
        assert_eq!(p.probe_timeout(secs(32)), secs(32));
    }
}
