//! A deadline on reading a request body (issue #29): the head has its own timeout, but a
//! client that sends `Content-Length: 1000` and then one byte a minute would otherwise hold
//! its connection, and the handler waiting on it, for as long as it likes.
//!
//! The clock starts the first time the body is not there when it is read: a body that came
//! with its head (nearly all of them) never arms a timer, so the common request pays
//! nothing. From then on the whole rest must arrive within the limit.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::body::{Bytes, HttpBody};
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::Sleep;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The error a body read fails with when its deadline passes.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(pub Duration);

pin_project! {
    pub struct DeadlineBody<B> {
        #[pin]
        inner: B,
        limit: Duration,
        deadline: Option<Pin<Box<Sleep>>>,
    }
}

impl<B> DeadlineBody<B> {
    /// `limit` zero: no deadline.
    pub fn new(inner: B, limit: Duration) -> DeadlineBody<B> {
        DeadlineBody {
            inner,
            limit,
            deadline: None,
        }
    }
}

impl<B> HttpBody for DeadlineBody<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.limit.is_zero() {
            return Poll::Pending;
        }
        let limit = *this.limit;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut(limit))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether an error (or one of its causes) is a body that did not arrive in time.
pub fn timed_out(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        cause = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    #[tokio::test]
    async fn a_stalled_body_fails_after_the_limit_and_a_whole_one_never_waits() {
        let whole = DeadlineBody::new(axum::body::Body::from("{}"), Duration::from_secs(1));
        assert_eq!(whole.collect().await.unwrap().to_bytes(), "{}");
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        let stalled = DeadlineBody::new(
            StreamBody::new(tokio_stream_from(rx)),
            Duration::from_millis(200),
        );
        tx.send(Ok(Frame::data(Bytes::from_static(b"{"))))
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let err = stalled.collect().await.err().unwrap();
        assert!(timed_out(err.as_ref()), "{err}");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        drop(tx);
    }

    fn tokio_stream_from<T>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures_util::Stream<Item = T> {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
