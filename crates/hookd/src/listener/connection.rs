//! One client connection under watch: what it is waiting for, and how long
//! it may wait for it.
//!
//! hyper's own `header_read_timeout` starts counting as soon as a
//! connection waits for a request, so it cannot tell a kept-alive connection
//! at rest from a client dribbling out its headers. Here the connection's
//! phase is followed instead: the socket reports bytes arriving, the service
//! reports a request's start, the request body its end, the response body
//! (dropped once written) the request's end; each phase but handling has
//! its own deadline, and a connection past it is dropped.

use super::Limits;
use axum::body::Body;
use hyper::body::Body as _;
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::header::{CONNECTION, HeaderValue};
use hyper::{Request, Response};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// What a connection is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The headers of a request: since the connection was made, or since
    /// the first byte of the next request on a kept-alive one.
    Headers,
    /// Nothing: a kept-alive connection between requests.
    Idle,
    /// The rest of a request's body, its headers read.
    Body,
    /// The server: the request is read and being answered. Handlers bound
    /// their own work, so this phase has no deadline here.
    Handling,
}

impl Phase {
    /// The limit on this phase, by its configuration key, if it has one.
    fn limit(self, limits: &Limits) -> Option<(&'static str, Duration)> {
        match self {
            Phase::Headers => Some(("header_read_timeout", limits.header_read_timeout)),
            Phase::Idle => Some(("idle_timeout", limits.idle_timeout)),
            Phase::Body => Some(("request_body_timeout", limits.request_body_timeout)),
            Phase::Handling => None,
        }
    }
}

/// When a connection's current phase runs out, and under which limit.
#[derive(Debug, Clone, Copy)]
pub(super) struct Deadline {
    pub(super) at: Instant,
    pub(super) limit: &'static str,
}

/// The phase of one connection and when it began; every change wakes the
/// connection's watchdog, so that it waits for the new deadline.
pub(super) struct Activity {
    phase: Mutex<(Phase, Instant)>,
    changed: tokio::sync::Notify,
}

impl Activity {
    /// A connection just accepted: it owes us a request's headers.
    pub(super) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            phase: Mutex::new((Phase::Headers, Instant::now())),
            changed: tokio::sync::Notify::new(),
        })
    }

    /// When the current phase runs out, if it can.
    pub(super) fn deadline(&self, limits: &Limits) -> Option<Deadline> {
        let (phase, since) = *self.lock();
        let (limit, allowed) = phase.limit(limits)?;
        Some(Deadline {
            at: since + allowed,
            limit,
        })
    }

    /// Resolves at the next change of phase. Made before the deadline is
    /// read, so that a change in between is not missed.
    pub(super) fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// Moves to `to` when in one of `from`.
    fn advance(&self, from: &[Phase], to: Phase) {
        let mut current = self.lock();
        if from.contains(&current.0) {
            *current = (to, Instant::now());
            drop(current);
            self.changed.notify_waiters();
        }
    }

    /// Whether the request's body is still being read.
    fn body_unread(&self) -> bool {
        self.lock().0 == Phase::Body
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Phase, Instant)> {
        // The state is a plain value, whole after any panic.
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The socket, reporting the first bytes of a request on a resting
/// connection.
pub(super) struct Watched<S> {
    pub(super) stream: S,
    pub(super) activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.stream).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            self.activity.advance(&[Phase::Idle], Phase::Headers);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The application as hyper calls it on one connection: each request and
/// its answer move the connection's phase along.
pub(super) struct Tracked<S> {
    pub(super) app: S,
    pub(super) activity: Arc<Activity>,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

/// What the listener serves: the Admin API, or any service shaped like it.
pub trait AdminService:
    tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send>
    + Clone
    + Send
    + 'static
{
}

impl<S> AdminService for S where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send>
        + Clone
        + Send
        + 'static
{
}

impl<S: AdminService> hyper::service::Service<Request<Incoming>> for Tracked<S> {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, request: Request<Incoming>) -> Answer {
        let activity = Arc::clone(&self.activity);
        let phase = if request.body().is_end_stream() {
            Phase::Handling
        } else {
            Phase::Body
        };
        activity.advance(&[Phase::Headers, Phase::Idle], phase);
        let request = request.map(|body| {
            Body::new(RequestBody {
                body,
                activity: Arc::clone(&activity),
            })
        });
        let answer = tower::ServiceExt::oneshot(self.app.clone(), request);
        Box::pin(async move {
            let mut response = answer.await?;
            // Answered before the request's body was read to its end (a
            // refusal of its type or its size): what is left of it would
            // be read as the next request, so the connection ends here,
            // and saying so keeps the client from sending one on it.
            if activity.body_unread() {
                let close = HeaderValue::from_static("close");
                response.headers_mut().insert(CONNECTION, close);
            }
            Ok(response.map(|body| ResponseBody {
                body,
                _answered: Answered(activity),
            }))
        })
    }
}

/// A request's body, reporting its end.
struct RequestBody {
    body: Incoming,
    activity: Arc<Activity>,
}

impl hyper::body::Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let frame = ready!(Pin::new(&mut self.body).poll_frame(cx));
        if frame.is_none() || self.body.is_end_stream() {
            self.activity.advance(&[Phase::Body], Phase::Handling);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// An answer's body; hyper drops it once written, which ends the request.
pub(super) struct ResponseBody {
    body: Body,
    // Held for its drop, when hyper has written the answer.
    _answered: Answered,
}

/// Rests the connection when the answer has been written (or given up).
struct Answered(Arc<Activity>);

impl Drop for Answered {
    fn drop(&mut self) {
        self.0.advance(&[Phase::Body, Phase::Handling], Phase::Idle);
    }
}

impl hyper::body::Body for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
