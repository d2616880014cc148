//! The request-head timeout (`--http-read-header-timeout`) on a timer that costs next to
//! nothing per request.
//!
//! hyper arms its header-read timer whenever it starts reading a request head, the wait
//! for a keep-alive connection's next request included, and drops it once the head has
//! arrived. On tokio's timer that is a timer-wheel entry inserted and removed under the
//! driver's lock on every request: ~0.4 µs, 5% of a health check's throughput on this
//! machine. A slow-loris cut-off needs no such precision. Here each connection has one
//! slot holding its deadline and its task's waker; arming is an atomic store, and one
//! watchdog task per server marks every deadline that has passed and wakes its
//! connection, a few times per timeout period. Only the watchdog reads the clock: a
//! connection is cut off between one timeout and one timeout plus [`tick`] after hyper
//! started waiting for its head.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures_util::task::AtomicWaker;
use hyper::rt::{Sleep, Timer};

/// No deadline armed.
const DISARMED: u64 = 0;
/// The watchdog found the deadline passed.
const FIRED: u64 = u64::MAX;

/// The server's connections and the watchdog that wakes the late ones.
pub struct HeadTimeouts {
    shared: Arc<Shared>,
}

struct Shared {
    /// Deadlines are nanoseconds after this instant, so they fit an atomic.
    epoch: Instant,
    slots: Mutex<Vec<Weak<Slot>>>,
}

/// One connection's header-read deadline.
struct Slot {
    shared: Arc<Shared>,
    deadline: AtomicU64,
    waker: AtomicWaker,
}

impl HeadTimeouts {
    /// Starts the watchdog for a head timeout of `timeout`; it stops once this is
    /// dropped (and every connection's timer with it).
    pub fn start(timeout: Duration) -> HeadTimeouts {
        let shared = Arc::new(Shared {
            epoch: Instant::now(),
            slots: Mutex::new(Vec::new()),
        });
        let watched = Arc::downgrade(&shared);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(tick(timeout));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(shared) = watched.upgrade() else {
                    return;
                };
                shared.wake_the_late();
            }
        });
        HeadTimeouts { shared }
    }

    /// A timer for one connection's `http1::Builder::timer`.
    pub fn connection(&self) -> ConnectionTimer {
        let slot = Arc::new(Slot {
            shared: self.shared.clone(),
            deadline: AtomicU64::new(DISARMED),
            waker: AtomicWaker::new(),
        });
        self.shared
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(&slot));
        ConnectionTimer { slot }
    }
}

/// How often the watchdog looks: an eighth of the timeout, between 10 ms and 1 s.
pub fn tick(timeout: Duration) -> Duration {
    (timeout / 8).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

impl Shared {
    fn nanos_since_epoch(&self, at: Instant) -> u64 {
        // Never DISARMED or FIRED: an instant at the epoch itself counts as one
        // nanosecond later, and 584 years later as a little earlier.
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(FIRED)
            .clamp(1, FIRED - 1)
    }

    fn wake_the_late(&self) {
        let now = self.nanos_since_epoch(Instant::now());
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.retain(|slot| {
            let Some(slot) = slot.upgrade() else {
                return false;
            };
            let deadline = slot.deadline.load(Ordering::Acquire);
            if deadline != DISARMED
                && deadline != FIRED
                && deadline <= now
                && slot
                    .deadline
                    .compare_exchange(deadline, FIRED, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                slot.waker.wake();
            }
            true
        });
    }
}

/// hyper's timer for one connection: at most one header-read deadline at a time.
pub struct ConnectionTimer {
    slot: Arc<Slot>,
}

impl Timer for ConnectionTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        let deadline = self.slot.shared.nanos_since_epoch(deadline);
        self.slot.deadline.store(deadline, Ordering::Release);
        Box::pin(HeadSleep {
            slot: self.slot.clone(),
            deadline,
        })
    }
}

struct HeadSleep {
    slot: Arc<Slot>,
    deadline: u64,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let fired = || self.slot.deadline.load(Ordering::Acquire) == FIRED;
        if fired() {
            return Poll::Ready(());
        }
        self.slot.waker.register(cx.waker());
        // The watchdog may have fired between the check and the registration, and woken
        // the waker registered before.
        if fired() {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Sleep for HeadSleep {}

impl Drop for HeadSleep {
    fn drop(&mut self) {
        // Disarm only this sleep's own deadline: a newer one may already be set.
        let _ = self.slot.deadline.compare_exchange(
            self.deadline,
            DISARMED,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use super::*;

    #[tokio::test]
    async fn a_sleep_ends_after_its_deadline_and_not_before() {
        let timeouts = HeadTimeouts::start(Duration::from_millis(200));
        let timer = timeouts.connection();
        let started = Instant::now();
        let mut sleep = timer.sleep(Duration::from_millis(200));
        poll_fn(|cx| sleep.as_mut().poll(cx)).await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(
            waited < Duration::from_millis(200) + tick(Duration::from_millis(200)) * 4,
            "{waited:?}"
        );
    }

    #[tokio::test]
    async fn a_dropped_sleep_disarms_its_slot_and_closed_connections_leave() {
        let timeouts = HeadTimeouts::start(Duration::from_secs(1));
        let timer = timeouts.connection();
        let sleep = timer.sleep(Duration::from_secs(1));
        assert_ne!(timer.slot.deadline.load(Ordering::Acquire), DISARMED);
        drop(sleep);
        assert_eq!(timer.slot.deadline.load(Ordering::Acquire), DISARMED);
        // A newer deadline survives the drop of an older sleep.
        let older = timer.sleep(Duration::from_secs(1));
        let newer = timer.sleep(Duration::from_secs(2));
        drop(older);
        assert_ne!(timer.slot.deadline.load(Ordering::Acquire), DISARMED);
        drop(newer);
        drop(timer);
        timeouts.shared.wake_the_late();
        assert!(
            timeouts
                .shared
                .slots
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty()
        );
    }
}
