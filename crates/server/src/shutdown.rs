//! The server's stop as its connections see it. Every connection task holds a [`Held`],
//! and so does every websocket a handler accepted: an accepted websocket belongs to its
//! handler's task, not to a connection task, so without its own hold the process would
//! exit under it and the client would see the connection cut. When the server stops,
//! every holder hears it (a connection finishes its request in flight; a websocket closes
//! with 1001, going away), and [`crate::serve::serve_connections`] waits for the last
//! one, within the grace period, before it exits.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tokio::sync::{Notify, watch};

/// The server's stop as its connections see it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    stopping: watch::Sender<bool>,
    held: AtomicUsize,
    all_let_go: Notify,
}

impl Default for Shutdown {
    fn default() -> Shutdown {
        Shutdown(Arc::new(Inner {
            stopping: watch::Sender::new(false),
            held: AtomicUsize::new(0),
            all_let_go: Notify::new(),
        }))
    }
}

impl Shutdown {
    /// Tells every holder that the server is stopping.
    pub fn begin(&self) {
        self.0.stopping.send_replace(true);
    }

    /// A hold for one connection or websocket, let go when dropped.
    pub fn hold(&self) -> Held {
        self.0.held.fetch_add(1, Ordering::AcqRel);
        Held {
            inner: self.0.clone(),
            stopping: self.0.stopping.subscribe(),
        }
    }

    /// How many connections and websockets hold on now.
    pub fn held(&self) -> usize {
        self.0.held.load(Ordering::Acquire)
    }

    /// Ends once nothing holds on.
    pub async fn all_let_go(&self) {
        loop {
            let notified = self.0.all_let_go.notified();
            tokio::pin!(notified);
            // Registered before the count is read: a hold let go in between still wakes us.
            notified.as_mut().enable();
            if self.held() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// One connection's or websocket's hold on the server.
pub struct Held {
    inner: Arc<Inner>,
    stopping: watch::Receiver<bool>,
}

impl Held {
    /// Ends when the server begins to stop (at once if it has).
    pub async fn stopping(&mut self) {
        // The sender lives in `inner`, which this hold keeps: the wait cannot fail.
        let _ = self.stopping.wait_for(|stopping| *stopping).await;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.inner.held.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.all_let_go.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn holders_hear_the_stop_and_the_server_waits_for_the_last() {
        let shutdown = Shutdown::default();
        shutdown.all_let_go().await;
        let mut first = shutdown.hold();
        let second = shutdown.hold();
        assert_eq!(shutdown.held(), 2);
        let waiting = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.all_let_go().await }
        });
        shutdown.begin();
        tokio::time::timeout(Duration::from_secs(1), first.stopping())
            .await
            .expect("a holder hears the stop");
        drop(first);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "one hold is left");
        drop(second);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("the last hold let go")
            .unwrap();
        // A hold taken after the stop hears it at once.
        tokio::time::timeout(Duration::from_secs(1), shutdown.hold().stopping())
            .await
            .expect("a late holder hears the stop");
    }
}
