//! Polling a pending verification: 2 s, then ×1.5 per poll, capped at 10 s, never sleeping past
//! the caller's deadline (the last sleep is shortened, then one final poll decides).

use std::future::Future;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::types::{Approval, VerificationState};

/// The poll schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct PollPolicy {
    /// First wait after the server answered `pending`.
    pub initial: Duration,
    /// Growth factor per poll.
    pub factor: f64,
    /// Largest wait between two polls.
    pub max: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(2),
            factor: 1.5,
            max: Duration::from_secs(10),
        }
    }
}

impl PollPolicy {
    /// The interval after `interval`: `min(interval × factor, max)`.
    pub fn next(&self, interval: Duration) -> Duration {
        let factor = if self.factor.is_finite() && self.factor >= 1.0 {
            self.factor
        } else {
            1.0
        };
        interval.mul_f64(factor).min(self.max)
    }
}

/// Polls with `fetch` until the verification is decided or `deadline` passes.
pub(crate) async fn poll_until_decided<F, Fut>(
    clock: &dyn Clock,
    policy: &PollPolicy,
    started: Instant,
    deadline: Instant,
    verification_id: &str,
    mut fetch: F,
) -> Result<Approval>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<VerificationState>>,
{
    let mut interval = policy.initial.min(policy.max);
    loop {
        let now = clock.now();
        if now >= deadline {
            return Err(Error::Timeout {
                verification_id: verification_id.to_owned(),
                waited: now.saturating_duration_since(started),
            });
        }
        let wait = interval.min(deadline - now);
        tracing::debug!(verification_id, ?wait, "verification pending; polling");
        clock.sleep(wait).await;
        interval = policy.next(interval);
        match fetch().await? {
            VerificationState::Approved(approval) => return Ok(approval),
            VerificationState::Denied {
                reason,
                verification_id,
            } => {
                return Err(Error::Denied {
                    reason,
                    verification_id,
                });
            }
            VerificationState::Expired { verification_id } => {
                return Err(Error::Expired { verification_id });
            }
            VerificationState::Pending { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::fake::FakeClock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn secs(v: &[f64]) -> Vec<Duration> {
        v.iter().map(|s| Duration::from_secs_f64(*s)).collect()
    }

    fn pending() -> Result<VerificationState> {
        Ok(VerificationState::Pending {
            verification_id: "v1".into(),
        })
    }

    #[tokio::test]
    async fn schedule_grows_by_half_and_caps_at_ten_seconds_and_stops_at_the_deadline() {
        let clock = FakeClock::new();
        let start = clock.now();
        let deadline = start + Duration::from_secs(60);
        let polls = AtomicUsize::new(0);
        let err = poll_until_decided(
            &clock,
            &PollPolicy::default(),
            start,
            deadline,
            "v1",
            || {
                polls.fetch_add(1, Ordering::SeqCst);
                async { pending() }
            },
        )
        .await
        .unwrap_err();
        // 2 + 3 + 4.5 + 6.75 + 10 + 10 + 10 = 46.25, then 10 → 56.25, then 3.75 (cut) = 60.
        assert_eq!(
            clock.sleeps(),
            secs(&[2.0, 3.0, 4.5, 6.75, 10.0, 10.0, 10.0, 10.0, 3.75])
        );
        assert_eq!(clock.elapsed(), Duration::from_secs(60));
        // One final poll happens after the shortened sleep.
        assert_eq!(polls.load(Ordering::SeqCst), 9);
        match err {
            Error::Timeout {
                verification_id,
                waited,
            } => {
                assert_eq!(verification_id, "v1");
                assert_eq!(waited, Duration::from_secs(60));
            }
            other => panic!("expected Timeout, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn short_deadline_cuts_the_first_sleep() {
        let clock = FakeClock::new();
        let start = clock.now();
        let err = poll_until_decided(
            &clock,
            &PollPolicy::default(),
            start,
            start + Duration::from_millis(500),
            "v1",
            || async { pending() },
        )
        .await
        .unwrap_err();
        assert_eq!(clock.sleeps(), vec![Duration::from_millis(500)]);
        assert!(matches!(err, Error::Timeout { .. }));
    }

    #[tokio::test]
    async fn returns_the_decision_as_soon_as_it_is_made() {
        let clock = FakeClock::new();
        let start = clock.now();
        let n = AtomicUsize::new(0);
        let approval = poll_until_decided(
            &clock,
            &PollPolicy::default(),
            start,
            start + Duration::from_secs(300),
            "v1",
            || {
                let i = n.fetch_add(1, Ordering::SeqCst);
                async move {
                    if i < 2 {
                        pending()
                    } else {
                        Ok(VerificationState::Approved(Approval {
                            verification_id: "v1".into(),
                            approved_by: Some("alice".into()),
                            expires_at: None,
                        }))
                    }
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(approval.approved_by.as_deref(), Some("alice"));
        assert_eq!(clock.sleeps(), secs(&[2.0, 3.0, 4.5]));

        for (state, check) in [
            (
                VerificationState::Denied {
                    reason: "no".into(),
                    verification_id: Some("v1".into()),
                },
                (|e: &Error| matches!(e, Error::Denied { reason, .. } if reason == "no"))
                    as fn(&Error) -> bool,
            ),
            (
                VerificationState::Expired {
                    verification_id: "v1".into(),
                },
                |e: &Error| matches!(e, Error::Expired { .. }),
            ),
        ] {
            let clock = FakeClock::new();
            let start = clock.now();
            let err = poll_until_decided(
                &clock,
                &PollPolicy::default(),
                start,
                start + Duration::from_secs(300),
                "v1",
                || {
                    let s = state.clone();
                    async move { Ok(s) }
                },
            )
            .await
            .unwrap_err();
            assert!(check(&err), "{err:?}");
        }
    }

    #[test]
    fn next_interval_ignores_nonsense_factors() {
        let p = PollPolicy {
            factor: f64::NAN,
            ..PollPolicy::default()
        };
        assert_eq!(p.next(Duration::from_secs(2)), Duration::from_secs(2));
    }
}
