//! Time, made injectable so the polling and retry schedules can be tested without sleeping.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

/// A boxed, sendable future (what [`Clock::sleep`] returns).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The client's source of time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Monotonic now (deadlines).
    fn now(&self) -> Instant;
    /// Wall-clock now (request timestamps, `Retry-After` dates).
    fn wall(&self) -> SystemTime;
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// The real clock: `Instant::now`, `SystemTime::now` and `tokio::time::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A clock whose `sleep` returns at once, advances time and records the duration.
    #[derive(Debug, Clone)]
    pub(crate) struct FakeClock {
        start: Instant,
        state: Arc<Mutex<(Duration, Vec<Duration>)>>,
    }

    impl FakeClock {
        pub(crate) fn new() -> Self {
            Self {
                start: Instant::now(),
                state: Arc::new(Mutex::new((Duration::ZERO, Vec::new()))),
            }
        }
        pub(crate) fn sleeps(&self) -> Vec<Duration> {
            self.state.lock().unwrap().1.clone()
        }
        pub(crate) fn elapsed(&self) -> Duration {
            self.state.lock().unwrap().0
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            self.start + self.elapsed()
        }
        fn wall(&self) -> SystemTime {
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_761_317_061) + self.elapsed()
        }
        fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
            let mut state = self.state.lock().unwrap();
            state.0 += duration;
            state.1.push(duration);
            Box::pin(async {})
        }
    }
}
