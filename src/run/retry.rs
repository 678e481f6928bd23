//! The one way shakedown retries a call: exponential backoff with jitter, only on errors
//! the caller calls transient, and never past a deadline the caller chooses.
//!
//! Built on `backon`. What "transient" means stays with each caller (a 429 from the API
//! server, a Prometheus connection error), and so does the deadline: a revert's budget, a
//! drain's timeout, a probe's timeout. Waits are `tokio::time` sleeps, so a test with a
//! paused clock runs them instantly.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio::time::Instant;

/// How long to wait between attempts.
///
/// Without jitter the waits would be `first`, `2·first`, `4·first`, … capped at `max`.
/// Each actual wait is drawn from the upper half of that, `[d/2, d)`: never later than the
/// plain schedule (so a deadline is judged as before), and spread out so that runs
/// retrying the same API server do not hit it in lockstep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    /// Attempts in all, the first one included; `None` retries until the deadline.
    pub attempts: Option<usize>,
}

impl Backoff {
    /// Unlimited attempts, waits from `first` doubling up to `max`.
    pub const fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            attempts: None,
        }
    }

    /// At most `attempts` calls in all (the first included).
    pub const fn with_attempts(self, attempts: usize) -> Self {
        Backoff {
            attempts: Some(attempts),
            ..self
        }
    }

    /// backon adds a jitter of `[0, d)` to each delay `d`; starting from half the wanted
    /// delays puts every wait in `[d/2, d)` of the schedule this type documents.
    fn builder(&self) -> ExponentialBuilder {
        let builder = ExponentialBuilder::new()
            .with_min_delay(self.first / 2)
            .with_max_delay(self.max / 2)
            .with_factor(2.0)
            .with_jitter();
        match self.attempts {
            Some(n) => builder.with_max_times(n.saturating_sub(1)),
            None => builder.without_max_times(),
        }
    }
}

/// Calls `call` until it succeeds, fails with an error `is_transient` rejects, runs out of
/// attempts, or the next wait would end at or after `deadline`. Returns the last result.
///
/// The deadline bounds the waits, not a call in flight: a caller that must bound those
/// too wraps its call in `tokio::time::timeout_at(deadline, …)`.
pub async fn retry<T, E, F, Fut>(
    backoff: Backoff,
    deadline: Instant,
    is_transient: impl FnMut(&E) -> bool,
    call: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    retry_notify(backoff, deadline, is_transient, |_, _| {}, call).await
}

/// [`retry`], calling `on_retry` with the error and the wait before each retry (not when
/// giving up), for a caller that tells the user why it is waiting.
pub async fn retry_notify<T, E, F, Fut>(
    backoff: Backoff,
    deadline: Instant,
    is_transient: impl FnMut(&E) -> bool,
    on_retry: impl FnMut(&E, Duration),
    call: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    call.retry(backoff.builder())
        .sleep(tokio::time::sleep)
        .when(is_transient)
        .adjust(move |_, wait| wait.filter(|w| Instant::now() + *w < deadline))
        .notify(on_retry)
        .await
}

/// The waits `backoff` would make, for tests of the jitter bounds.
#[cfg(test)]
fn waits(backoff: Backoff, seed: u64) -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    backoff.builder().with_jitter_seed(seed).build()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[derive(Debug, PartialEq)]
    enum Error {
        Busy,
        Denied,
    }

    fn transient(e: &Error) -> bool {
        *e == Error::Busy
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_deadline_and_never_sleeps_past_it() {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(10);
        let calls = Cell::new(0);
        let result: Result<(), Error> = retry(
            Backoff::new(200 * MS, Duration::from_secs(5)),
            deadline,
            transient,
            || {
                calls.set(calls.get() + 1);
                async { Err(Error::Busy) }
            },
        )
        .await;
        assert_eq!(result, Err(Error::Busy));
        assert!(Instant::now() < deadline, "no wait ends past the deadline");
        // Waits of at least 100, 200, 400, 800, 1600, 2500, 2500 ms fill most of 10 s;
        // at most 200, 400, 800, 1600, 3200, 5000 ms, so at least 6 calls fit.
        assert!((6..=8).contains(&calls.get()), "{} calls", calls.get());
        // Giving up early would leave more than one maximal wait unused.
        assert!(deadline - Instant::now() < Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_transient_errors() {
        let deadline = Instant::now() + Duration::from_secs(60);
        let backoff = Backoff::new(100 * MS, Duration::from_secs(1));
        let calls = Cell::new(0);
        let denied: Result<(), Error> = retry(backoff, deadline, transient, || {
            calls.set(calls.get() + 1);
            async { Err(Error::Denied) }
        })
        .await;
        assert_eq!((denied, calls.get()), (Err(Error::Denied), 1));

        let calls = Cell::new(0);
        let busy_twice = retry(backoff, deadline, transient, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move { if n < 3 { Err(Error::Busy) } else { Ok(n) } }
        })
        .await;
        assert_eq!(busy_twice, Ok(3));
    }

    #[tokio::test(start_paused = true)]
    async fn stops_after_the_attempt_limit_and_tells_each_retry() {
        let deadline = Instant::now() + Duration::from_secs(60);
        let calls = Cell::new(0);
        let mut told = Vec::new();
        let result: Result<(), Error> = retry_notify(
            Backoff::new(250 * MS, Duration::from_secs(5)).with_attempts(3),
            deadline,
            transient,
            |e, wait| told.push((format!("{e:?}"), wait)),
            || {
                calls.set(calls.get() + 1);
                async { Err(Error::Busy) }
            },
        )
        .await;
        assert_eq!((result, calls.get()), (Err(Error::Busy), 3));
        assert_eq!(told.len(), 2, "told before each retry, not when giving up");
        assert!(told.iter().all(|(e, _)| e == "Busy"));
    }

    #[test]
    fn jitter_keeps_each_wait_in_the_upper_half_of_the_schedule() {
        let backoff = Backoff::new(200 * MS, Duration::from_secs(5));
        for seed in 0..200 {
            let mut plain = backoff.first;
            for wait in waits(backoff, seed).take(12) {
                assert!(
                    wait >= plain / 2 && wait < plain,
                    "seed {seed}: {wait:?} outside [{:?}, {plain:?})",
                    plain / 2
                );
                plain = (plain * 2).min(backoff.max);
            }
        }
        let spread: std::collections::BTreeSet<_> = (0..20)
            .filter_map(|seed| waits(backoff, seed).next())
            .collect();
        assert!(spread.len() > 10, "the waits are spread out: {spread:?}");
    }
}
