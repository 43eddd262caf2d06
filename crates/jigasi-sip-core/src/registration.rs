//! When to REGISTER, and what the registrar's answers mean (RFC 3261 §10).

use std::time::{Duration, Instant};

use crate::keepalive::{ProbeVerdict, Unreachable};

/// Settings of a [`RegistrationPolicy`]. Defaults follow Jigasi where it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// Whether a registrar is configured at all. `false` is Jigasi's registrar-less mode: the
    /// account counts as registered at once and no REGISTER is ever sent.
    pub registrar: bool,
    /// The expiry we ask for. Default 600 s, Jigasi's `REGISTRATION_EXPIRATION`.
    pub requested_expiry: Duration,
    /// First retry delay after a temporary failure (timeout, transport error, 5xx). Default 1 s.
    pub min_backoff: Duration,
    /// The retry delay doubles per consecutive failure up to this. Default 60 s.
    pub max_backoff: Duration,
    /// After a definitive rejection (wrong credentials, unknown user) we try again only this
    /// rarely, so a typo in the password is not a tight REGISTER loop. Default 300 s.
    pub rejected_retry: Duration,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            registrar: true,
            requested_expiry: Duration::from_secs(600),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            rejected_retry: Duration::from_secs(300),
        }
    }
}

/// What one REGISTER attempt ended with, as the SIP adapter saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx, with the expiry the registrar granted for our contact.
    Accepted {
        /// Granted expiry (Contact `expires` parameter or `Expires` header).
        granted: Duration,
    },
    /// Any other final response. Digest challenges were already answered by the stack, so a
    /// 401 or 407 here means our credentials were refused.
    Refused {
        /// The SIP status code.
        status: u16,
        /// `Min-Expires` from a 423 Interval Too Brief.
        min_expires: Option<Duration>,
    },
    /// No final response (RFC 3261 timer F).
    TimedOut,
    /// The request could not be sent (connection refused, no route, DNS failure).
    TransportFailed,
}

/// Why the last attempt failed, for temporary failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No final response.
    TimedOut,
    /// The request could not be sent.
    Transport,
    /// The registrar answered with a status that is worth retrying (408, 480, 5xx, 6xx).
    Status(u16),
}

/// Where the registration stands. Visible to health checks and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationState {
    /// No registrar configured: nothing to do, the account is usable.
    NotRequired,
    /// The first REGISTER is under way.
    Registering,
    /// The registrar accepted us.
    Registered {
        /// The expiry it granted.
        expires: Duration,
    },
    /// The last attempt failed for a reason that may go away; retrying with backoff.
    Retrying {
        /// Consecutive failures so far.
        failures: u32,
        /// What went wrong last.
        last: FailureKind,
    },
    /// The registrar refused us (wrong credentials, unknown user, forbidden). Retried rarely.
    Rejected {
        /// The refusing status code.
        status: u16,
    },
    /// We removed our binding (shutdown).
    Unregistered,
}

impl RegistrationState {
    /// Whether the registrar currently accepts us (or none is needed).
    pub fn is_registered(&self) -> bool {
        matches!(self, Self::NotRequired | Self::Registered { .. })
    }
}

/// Decides when to send REGISTER and interprets the answers.
///
/// Inputs: [`handle_timeout`](Self::handle_timeout) when [`poll_timeout`](Self::poll_timeout) is
/// reached, [`handle_outcome`](Self::handle_outcome) when an attempt ends, and
/// [`begin_unregister`](Self::begin_unregister) at shutdown. The policy never has more than one
/// attempt in flight.
#[derive(Debug)]
pub struct RegistrationPolicy {
    config: RegistrationConfig,
    state: RegistrationState,
    /// When the next REGISTER is due; `None` while one is in flight or when nothing is to be done.
    next_attempt: Option<Instant>,
    in_flight: bool,
    /// The binding the registrar holds for us is valid until then.
    valid_until: Option<Instant>,
    failures: u32,
    /// The expiry we ask for; raised by a 423.
    expiry: Duration,
}

impl RegistrationPolicy {
    /// A policy that wants its first REGISTER at `now` (or, registrar-less, never).
    pub fn new(config: RegistrationConfig, now: Instant) -> Self {
        let (state, next_attempt) = if config.registrar {
            (RegistrationState::Registering, Some(now))
        } else {
            (RegistrationState::NotRequired, None)
        };
        Self {
            expiry: config.requested_expiry,
            config,
            state,
            next_attempt,
            in_flight: false,
            valid_until: None,
            failures: 0,
        }
    }

    /// Time has reached [`poll_timeout`](Self::poll_timeout). Returns `true` when the driver must
    /// send a REGISTER now (with [`expiry`](Self::expiry)), then report its outcome.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        match self.next_attempt {
            Some(due) if due <= now && !self.in_flight => {
                self.next_attempt = None;
                self.in_flight = true;
                true
            }
            Some(_) | None => false,
        }
    }

    /// The REGISTER sent after [`handle_timeout`](Self::handle_timeout) returned `true` has ended.
    pub fn handle_outcome(&mut self, now: Instant, outcome: AttemptOutcome) {
        if !self.in_flight || self.state == RegistrationState::Unregistered {
            return;
        }
        self.in_flight = false;
        match outcome {
            AttemptOutcome::Accepted { granted } => {
                // A 2xx without any expiry is read as "what we asked for" (RFC 3261 §10.2.4).
                let granted = if granted.is_zero() {
                    self.expiry
                } else {
                    granted
                };
                self.failures = 0;
                self.state = RegistrationState::Registered { expires: granted };
                self.valid_until = Some(now + granted);
                self.next_attempt = Some(now + refresh_after(granted));
            }
            AttemptOutcome::Refused {
                status: 423,
                min_expires: Some(min),
            } if min > self.expiry => {
                // Interval Too Brief: ask again at once with the registrar's minimum.
                self.expiry = min;
                self.next_attempt = Some(now);
            }
            AttemptOutcome::Refused { status, .. } if is_definitive(status) => {
                self.failures += 1;
                self.valid_until = None;
                self.state = RegistrationState::Rejected { status };
                self.next_attempt = Some(now + self.config.rejected_retry);
            }
            AttemptOutcome::Refused { status, .. } => self.fail(now, FailureKind::Status(status)),
            AttemptOutcome::TimedOut => self.fail(now, FailureKind::TimedOut),
            AttemptOutcome::TransportFailed => self.fail(now, FailureKind::Transport),
        }
    }

    /// Shutdown: stop refreshing. Returns `true` when the driver should send a REGISTER with
    /// `Expires: 0` to remove our binding (only if the registrar may still hold one).
    pub fn begin_unregister(&mut self, now: Instant) -> bool {
        let holds_binding = self.valid_until.is_some_and(|until| until > now);
        if self.state != RegistrationState::NotRequired {
            self.state = RegistrationState::Unregistered;
        }
        self.next_attempt = None;
        self.valid_until = None;
        holds_binding
    }

    /// Asks for a REGISTER at `now` (the REGISTER keep-alive method), unless one is in flight
    /// or the account is not meant to be registered (registrar-less, rejected, shut down).
    pub fn refresh_now(&mut self, now: Instant) {
        if self.in_flight {
            return;
        }
        match self.state {
            RegistrationState::Registered { .. }
            | RegistrationState::Registering
            | RegistrationState::Retrying { .. } => self.next_attempt = Some(now),
            RegistrationState::NotRequired
            | RegistrationState::Rejected { .. }
            | RegistrationState::Unregistered => {}
        }
    }

    /// A keep-alive ended with `verdict` at `now`. A lost binding makes the account
    /// unregistered and re-REGISTERs at once; an unreachable registrar counts as a failed
    /// attempt (the binding we hold may still be valid) and also re-REGISTERs at once, further
    /// failures then back off as usual.
    pub fn handle_keep_alive(&mut self, now: Instant, verdict: ProbeVerdict) {
        if !matches!(self.state, RegistrationState::Registered { .. }) || self.in_flight {
            return;
        }
        match verdict {
            ProbeVerdict::Alive => {}
            ProbeVerdict::BindingLost { .. } => {
                self.valid_until = None;
                self.state = RegistrationState::Registering;
                self.next_attempt = Some(now);
            }
            ProbeVerdict::Unreachable { cause } => {
                self.failures += 1;
                self.state = RegistrationState::Retrying {
                    failures: self.failures,
                    last: match cause {
                        Unreachable::TimedOut => FailureKind::TimedOut,
                        Unreachable::Transport => FailureKind::Transport,
                        Unreachable::Status(status) => FailureKind::Status(status),
                    },
                };
                self.next_attempt = Some(now);
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_attempt
    }

    /// The current state.
    pub fn state(&self) -> &RegistrationState {
        &self.state
    }

    /// The expiry to ask for in the next REGISTER.
    pub fn expiry(&self) -> Duration {
        self.expiry
    }

    /// Whether the account can take and place calls at `now`: registrar-less, or the registrar
    /// still holds a binding for us. A refresh that times out does not make us unready until the
    /// previous binding really expires.
    pub fn is_ready(&self, now: Instant) -> bool {
        self.state == RegistrationState::NotRequired
            || self.valid_until.is_some_and(|until| until > now)
    }

    fn fail(&mut self, now: Instant, kind: FailureKind) {
        self.failures += 1;
        self.state = RegistrationState::Retrying {
            failures: self.failures,
            last: kind,
        };
        let exponent = self.failures.saturating_sub(1).min(16);
        let backoff = self
            .config
            .min_backoff
            .saturating_mul(1 << exponent)
            .min(self.config.max_backoff);
        // Never wait past the expiry of a binding we still hold.
        let due = now + backoff;
        self.next_attempt = Some(match self.valid_until {
            Some(until) if until > now && until < due => until,
            Some(_) | None => due,
        });
    }
}

/// Refresh at 75 % of the granted expiry (what rsipstack and most UAs do), at least 1 s after.
fn refresh_after(granted: Duration) -> Duration {
    (granted * 3 / 4).max(Duration::from_secs(1))
}

/// Statuses that say "you, with these credentials, are not welcome": retrying soon cannot help.
fn is_definitive(status: u16) -> bool {
    matches!(status, 300..=399 | 400..=407 | 410..=479 | 481..=499)
}

#[cfg(test)]
mod tests {
    // Tests take one real instant as the base of their virtual clock.
    #![allow(clippy::unwrap_used, clippy::disallowed_methods)]

    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Runs one attempt: the policy must want to send at its own deadline.
    fn attempt(p: &mut RegistrationPolicy, outcome: AttemptOutcome) -> Instant {
        let due = p.poll_timeout().unwrap();
        assert!(p.handle_timeout(due), "policy did not send at its deadline");
        p.handle_outcome(due, outcome);
        due
    }

    #[test]
    fn first_register_is_immediate_and_refresh_is_at_three_quarters() {
        let t0 = Instant::now();
        let mut p = RegistrationPolicy::new(RegistrationConfig::default(), t0);
        assert_eq!(p.state(), &RegistrationState::Registering);
        assert_eq!(p.poll_timeout(), Some(t0));
        assert!(!p.is_ready(t0));
        attempt(&mut p, AttemptOutcome::Accepted { granted: secs(300) });
        assert_eq!(
            p.state(),
            &RegistrationState::Registered { expires: secs(300) }
        );
        assert_eq!(p.poll_timeout(), Some(t0 + secs(225)));
        assert!(p.is_ready(t0 + secs(299)));
        assert!(!p.is_ready(t0 + secs(300)));
    }

    #[test]
    fn no_second_attempt_while_one_is_in_flight() {
        let t0 = Instant::now();
        let mut p = RegistrationPolicy::new(RegistrationConfig::default(), t0);
        assert!(p.handle_timeout(t0));
        assert!(!p.handle_timeout(t0 + secs(10)));
        assert_eq!(p.poll_timeout(), None);
    }

    #[test]
    fn early_timeout_does_not_send() {
        let t0 = Instant::now();
        let mut p = RegistrationPolicy::new(RegistrationConfig::default(), t0);
        attempt(&mut p, AttemptOutcome::Accepted { granted: secs(100) });
        assert!(!p.handle_timeout(t0 + secs(10)));
        assert!(p.handle_timeout(t0 + secs(75)));
    }

    #[test]
    fn wrong_credentials_are_rejected_without_a_tight_loop() {
        let t0 = Instant::now();
        let mut p = RegistrationPolicy::new(RegistrationConfig::default(), t0);
        for status in [403, 401, 407, 404] {
            let at = attempt(
                &mut p,
                AttemptOutcome::Refused {
                    status,
                    min_expires: None,
                },
            );
            assert_eq!(p.state(), &RegistrationState::Rejected { status });
            assert_eq!(p.poll_timeout(), Some(at + secs(300)));
            assert!(!p.state().is_registered());
        }
    }

    #[test]
    fn temporary_failures_back_off_exponentially_up_to_the_cap() {
        let t0 = Instant::now();
        let mut p = RegistrationPolicy::new(RegistrationConfig::default(), t0);
        let mut waits = Vec::new();
        for outcome in [
            AttemptOutcome::TimedOut,
            AttemptOutcome::TransportFailed,
            AttemptOutcome::Refused {
                status: 503,
                min_expires: None,
            },
            AttemptOutcome::TimedOut,
            AttemptOutcome::TimedOut,
            AttemptOutcome::TimedOut,
            AttemptOutcome::TimedOut,
            AttemptOutcome::TimedOut,
        ] {
            let at = attempt(&mut p, outcome);
            waits.push((p.poll_timeout().unwrap() - at).as_secs());
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(
            p.state(),
            &RegistrationState::Retrying {
                failures: 8,
                last: FailureKind::TimedOut
            }
        );
        // Recovery resets the backoff.
        let at = attempt(&mut p, AttemptOutcome::Accepted { granted: secs(60) });
        assert_eq!(p.poll_timeout(), Some(at + secs(45)));
        attempt(&mut p, AttemptOutcome::TimedOut);
        assert_eq!(
            p.state(),
            &RegistrationState::Retrying {
                failures: 1,
                last: FailureKind::TimedOut
            }
        );
    }

    #[test]
    fn failed_refresh_keeps_the_gateway_ready_until_the_binding_expires() {
        let t0 = Instant::now();
        let mut p = RegistrationPolicy::new(RegistrationConfig::default(), t0);
        attempt(&mut p, AttemptOutcome::Accepted { granted: secs(8) });
        // Refresh at t0+6 times out; the binding from t0 is valid until t0+8.
        let at = attempt(&mut p, AttemptOutcome::TimedOut);
        assert_eq!(at, t0 + secs(6));
        assert!(p.is_ready(t0 + secs(7)));
        assert!(!p.is_ready(t0 + secs(8)));
        // The retry is not scheduled later than the expiry of the binding.
        attempt(&mut p, AttemptOutcome::TimedOut);
        let next = p.poll_timeout().unwrap();
        assert!(next <= t0 + secs(8) + secs(4), "retry at {next:?}");
    }

    #[test]
    fn interval_too_brief_retries_at_once_with_min_expires() {
        let t0 = Instant::now();
        let config = RegistrationConfig {
            requested_expiry: secs(60),
            ..RegistrationConfig::default()
        };
        let mut p = RegistrationPolicy::new(config, t0);
        let at = attempt(
            &mut p,
            AttemptOutcome::Refused {
                status: 423,
                min_expires: Some(secs(3600)),
            },
        );
        assert_eq!(p.expiry(), secs(3600));
        assert_eq!(p.poll_timeout(), Some(at));
        // A 423 whose minimum we already ask for is a definitive rejection, not a loop.
        attempt(
            &mut p,
            AttemptOutcome::Refused {
                status: 423,
                min_expires: Some(secs(3600)),
            },
        );
        assert_eq!(p.state(), &RegistrationState::Rejected { status: 423 });
    }

    #[test]
    fn registrar_less_mode_is_ready_and_silent() {
        let t0 = Instant::now();
        let config = RegistrationConfig {
            registrar: false,
            ..RegistrationConfig::default()
        };
        let mut p = RegistrationPolicy::new(config, t0);
        assert_eq!(p.state(), &RegistrationState::NotRequired);
        assert!(p.state().is_registered());
        assert!(p.is_ready(t0));
        assert_eq!(p.poll_timeout(), None);
        assert!(!p.handle_timeout(t0 + secs(1000)));
        assert!(!p.begin_unregister(t0));
        assert_eq!(p.state(), &RegistrationState::NotRequired);
    }

    #[test]
    fn unregister_only_when_a_binding_is_held() {
        let t0 = Instant::now();
        let mut p = RegistrationPolicy::new(RegistrationConfig::default(), t0);
        assert!(!p.begin_unregister(t0), "nothing registered yet");

        let mut p = RegistrationPolicy::new(RegistrationConfig::default(), t0);
        attempt(&mut p, AttemptOutcome::Accepted { granted: secs(600) });
        assert!(p.begin_unregister(t0 + secs(1)));
        assert_eq!(p.state(), &RegistrationState::Unregistered);
        assert_eq!(p.poll_timeout(), None);
        assert!(!p.is_ready(t0 + secs(2)));
    }

    #[test]
    fn outcome_after_unregister_is_ignored() {
        let t0 = Instant::now();
        let mut p = RegistrationPolicy::new(RegistrationConfig::default(), t0);
        assert!(p.handle_timeout(t0));
        p.begin_unregister(t0);
        p.handle_outcome(t0, AttemptOutcome::Accepted { granted: secs(600) });
        assert_eq!(p.state(), &RegistrationState::Unregistered);
        assert_eq!(p.poll_timeout(), None);
    }

    #[test]
    fn lost_binding_re_registers_at_once_and_is_not_ready() {
        let t0 = Instant::now();
        let mut p = RegistrationPolicy::new(RegistrationConfig::default(), t0);
        attempt(&mut p, AttemptOutcome::Accepted { granted: secs(600) });
        let t1 = t0 + secs(30);
        p.handle_keep_alive(t1, ProbeVerdict::BindingLost { status: 404 });
        assert_eq!(p.state(), &RegistrationState::Registering);
        assert!(!p.is_ready(t1));
        assert_eq!(p.poll_timeout(), Some(t1));
        attempt(&mut p, AttemptOutcome::Accepted { granted: secs(600) });
        assert!(p.is_ready(t1));
    }

    #[test]
    fn unreachable_registrar_counts_as_a_failure_and_re_registers_at_once() {
        let t0 = Instant::now();
        let mut p = RegistrationPolicy::new(RegistrationConfig::default(), t0);
        attempt(&mut p, AttemptOutcome::Accepted { granted: secs(600) });
        let t1 = t0 + secs(30);
        p.handle_keep_alive(
            t1,
            ProbeVerdict::Unreachable {
                cause: Unreachable::TimedOut,
            },
        );
        assert_eq!(
            p.state(),
            &RegistrationState::Retrying {
                failures: 1,
                last: FailureKind::TimedOut
            }
        );
        assert!(p.is_ready(t1), "the binding we hold is still valid");
        assert_eq!(p.poll_timeout(), Some(t1));
        // The re-REGISTER fails too: the usual backoff continues from there.
        attempt(&mut p, AttemptOutcome::TimedOut);
        assert_eq!(p.poll_timeout(), Some(t1 + secs(2)));
    }

    #[test]
    fn alive_keep_alive_changes_nothing() {
        let t0 = Instant::now();
        let mut p = RegistrationPolicy::new(RegistrationConfig::default(), t0);
        attempt(&mut p, AttemptOutcome::Accepted { granted: secs(600) });
        p.handle_keep_alive(t0 + secs(30), ProbeVerdict::Alive);
        assert_eq!(
            p.state(),
            &RegistrationState::Registered { expires: secs(600) }
        );
        assert_eq!(p.poll_timeout(), Some(t0 + secs(450)));
    }

    #[test]
    fn keep_alive_verdicts_are_ignored_unless_registered() {
        let t0 = Instant::now();
        let mut p = RegistrationPolicy::new(RegistrationConfig::default(), t0);
        attempt(
            &mut p,
            AttemptOutcome::Refused {
                status: 403,
                min_expires: None,
            },
        );
        let due = p.poll_timeout();
        p.handle_keep_alive(t0, ProbeVerdict::BindingLost { status: 404 });
        p.refresh_now(t0);
        assert_eq!(p.state(), &RegistrationState::Rejected { status: 403 });
        assert_eq!(p.poll_timeout(), due);
    }

    #[test]
    fn refresh_now_moves_the_next_register_forward() {
        let t0 = Instant::now();
        let mut p = RegistrationPolicy::new(RegistrationConfig::default(), t0);
        attempt(&mut p, AttemptOutcome::Accepted { granted: secs(600) });
        p.refresh_now(t0 + secs(25));
        assert_eq!(p.poll_timeout(), Some(t0 + secs(25)));
        assert!(p.handle_timeout(t0 + secs(25)));
        // In flight: no second one.
        p.refresh_now(t0 + secs(26));
        assert_eq!(p.poll_timeout(), None);
    }

    #[test]
    fn zero_granted_expiry_means_what_we_asked_for() {
        let t0 = Instant::now();
        let mut p = RegistrationPolicy::new(RegistrationConfig::default(), t0);
        attempt(&mut p, AttemptOutcome::Accepted { granted: secs(0) });
        assert_eq!(
            p.state(),
            &RegistrationState::Registered { expires: secs(600) }
        );
    }
}
