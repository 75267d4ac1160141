//! The timeout of a connection's reads and writes: one timer per connection, moved
//! from one I/O step to the next, instead of a new timer (and a clock read) per step.
//!
//! A connection does one thing at a time — read the head, write upstream, read the
//! response, write downstream — so one timer covers all of its steps. Each step sets the
//! timer's deadline to the connection's latest clock reading plus the step's timeout.
//! The readings are the ones the request path makes anyway (the head's completion, the
//! upstream's answer, the request's end, see `metrics::Exchange`); a step that follows a
//! wait of unknown length (a connect, the IdP, a body chunk, a write larger than a
//! socket buffer) takes a fresh one with
//! [`IoTimer::fresh`]. So a deadline is never later than "timeout after the step began",
//! and earlier by at most the few microseconds of work since the last reading.
//!
//! The timer itself is moved lazily. A step's deadline is only recorded; the sleep
//! behind it stays where it is unless the new deadline is earlier. When the sleep goes
//! off at an older, earlier deadline, the step's real deadline is looked at then, and the
//! sleep moved out to it. A keep-alive connection's steps all have later deadlines than
//! the one before, so its timer touches the wheel about once per timeout (a minute,
//! by default) instead of on every step, and the sleep is polled again only when it
//! was moved or the step runs under another waker.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use monoio::time::Sleep;

/// A deadline this far out stands for "none" (and for timeouts too large to add).
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// One connection's I/O timer and its latest clock reading.
pub struct IoTimer {
    sleep: Pin<Box<Sleep>>,
    now: Instant,
    /// Where the sleep is set: never later than `deadline`.
    armed: Instant,
    /// The current step's deadline.
    deadline: Instant,
    /// The waker the sleep last registered, while it holds.
    registered: Option<Waker>,
}

impl IoTimer {
    /// A timer, disarmed, with a fresh clock reading. Must be made on a monoio runtime
    /// with its timer enabled.
    pub fn new() -> IoTimer {
        let now = Instant::now();
        let far = now + FAR;
        IoTimer {
            sleep: Box::pin(monoio::time::sleep_until(far.into())),
            now,
            armed: far,
            deadline: far,
            registered: None,
        }
    }

    /// The latest clock reading.
    pub fn latest(&self) -> Instant {
        self.now
    }

    /// Reads the clock, records the reading and returns it.
    pub fn fresh(&mut self) -> Instant {
        self.now = Instant::now();
        self.now
    }

    /// Runs `step`, giving up (`None`) once `timeout` has passed since the latest clock
    /// reading. Dropping `step` on a timeout cancels its I/O.
    pub fn run<F: Future>(&mut self, timeout: Duration, step: F) -> Bounded<'_, F> {
        self.deadline = self.now.checked_add(timeout).unwrap_or(self.now + FAR);
        if self.deadline < self.armed {
            self.arm(self.deadline);
        }
        Bounded { step, timer: self }
    }

    fn arm(&mut self, at: Instant) {
        self.sleep.as_mut().reset(at.into());
        self.armed = at;
        self.registered = None;
    }

    /// Ready once the current step's deadline has passed.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if let Some(w) = &self.registered {
                // The sleep holds a waker that wakes this task, and has not gone off.
                if w.will_wake(cx.waker()) && !self.sleep.is_elapsed() {
                    return Poll::Pending;
                }
            }
            if self.sleep.as_mut().poll(cx).is_pending() {
                self.registered = Some(cx.waker().clone());
                return Poll::Pending;
            }
            if self.deadline <= self.armed {
                return Poll::Ready(());
            }
            // An earlier step's deadline went off; this step's is later.
            self.arm(self.deadline);
        }
    }
}

impl Default for IoTimer {
    fn default() -> Self {
        Self::new()
    }
}

pin_project_lite::pin_project! {
    /// A step under an [`IoTimer`]'s deadline (a plain struct rather than an `async fn`,
    /// so the step future is moved once, into it, and not again into an outer state
    /// machine).
    pub struct Bounded<'t, F> {
        #[pin]
        step: F,
        timer: &'t mut IoTimer,
    }
}

impl<F: Future> Future for Bounded<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.step.poll(cx) {
            return Poll::Ready(Some(out));
        }
        this.timer.poll_expired(cx).map(|()| None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(f: F) -> F::Output {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build().unwrap().block_on(f)
    }

    #[test]
    fn a_step_that_finishes_in_time_gives_its_output() {
        block_on(async {
            let mut t = IoTimer::new();
            assert_eq!(t.run(Duration::from_secs(5), async { 7 }).await, Some(7));
        });
    }

    #[test]
    fn a_step_past_its_deadline_is_abandoned() {
        block_on(async {
            let mut t = IoTimer::new();
            let began = t.fresh();
            let out = t.run(Duration::from_millis(30), std::future::pending::<()>()).await;
            assert_eq!(out, None);
            let took = began.elapsed();
            assert!(took >= Duration::from_millis(30), "gave up after {took:?}, before the deadline");
        });
    }

    #[test]
    fn the_deadline_counts_from_the_latest_reading_and_can_move_either_way() {
        block_on(async {
            let mut t = IoTimer::new();
            // A long deadline first, then a short one: the short one must still fire.
            t.fresh();
            assert_eq!(t.run(Duration::from_secs(3600), async { 1 }).await, Some(1));
            t.fresh();
            assert_eq!(t.run(Duration::from_millis(20), std::future::pending::<()>()).await, None);
            // After firing, a later deadline arms it again: a 20 ms sleep inside a 2 s
            // bound completes.
            t.fresh();
            let slept = t.run(Duration::from_secs(2), monoio::time::sleep(Duration::from_millis(20))).await;
            assert_eq!(slept, Some(()));
            // A short deadline after a long one that is still armed.
            t.fresh();
            let began = Instant::now();
            assert_eq!(t.run(Duration::from_millis(25), std::future::pending::<()>()).await, None);
            assert!(began.elapsed() < Duration::from_secs(2), "the earlier deadline was not honoured");
        });
    }

    #[test]
    fn a_later_deadline_outlasts_the_earlier_one_the_sleep_is_still_set_to() {
        block_on(async {
            let mut t = IoTimer::new();
            // Sets the sleep to 30 ms out; the step finishes at once.
            t.fresh();
            assert_eq!(t.run(Duration::from_millis(30), async { 1 }).await, Some(1));
            // A 120 ms deadline: the sleep still goes off at 30 ms, which must not end
            // a step that takes 60 ms...
            t.fresh();
            let slept = t.run(Duration::from_millis(120), monoio::time::sleep(Duration::from_millis(60))).await;
            assert_eq!(slept, Some(()), "ended at the earlier step's deadline");
            // ...and a step that never finishes still ends, at its own deadline.
            let began = t.fresh();
            assert_eq!(t.run(Duration::from_millis(90), std::future::pending::<()>()).await, None);
            let took = began.elapsed();
            assert!(took >= Duration::from_millis(90), "gave up after {took:?}, before the deadline");
            assert!(took < Duration::from_secs(2), "the deadline was not honoured: {took:?}");
        });
    }

    #[test]
    fn a_stale_reading_makes_the_deadline_earlier_never_later() {
        block_on(async {
            let mut t = IoTimer::new();
            t.fresh();
            monoio::time::sleep(Duration::from_millis(200)).await;
            // 250 ms from a reading 200 ms old: gives up about 50 ms from now.
            let began = Instant::now();
            assert_eq!(t.run(Duration::from_millis(250), std::future::pending::<()>()).await, None);
            assert!(began.elapsed() < Duration::from_millis(200), "counted from the step, not the reading");
        });
    }

    #[test]
    fn a_huge_timeout_does_not_overflow() {
        block_on(async {
            let mut t = IoTimer::new();
            assert_eq!(t.run(Duration::MAX, async { 3 }).await, Some(3));
        });
    }
}
