//! Bodies in both directions, streamed chunk by chunk: [`ProxyBody`], the answer handed back to
//! the caller (the upstream's body under an idle timeout, or the proxy's own problem document),
//! and the request body going up, which reports its progress for the timeouts.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

/// The error type of bodies passing through the proxy.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of a request going upstream (the client's, or none).
pub(crate) type OutBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// The upstream sent no body chunk within the idle timeout.
#[derive(Debug, thiserror::Error)]
#[error("the upstream sent nothing for {0:?}")]
pub struct IdleTimeout(pub Duration);

/// The body of an answer from [`crate::Proxy::forward`]: the upstream's body, streamed, or the
/// proxy's own problem document. Convert it with `axum::body::Body::new` where an axum body is
/// wanted.
#[derive(Debug)]
pub struct ProxyBody {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Full(Option<Bytes>),
    Stream(Box<Download>),
}

/// The upstream's response body: no chunk may take longer than `idle` to come once asked for,
/// and the upstream's concurrency slot is held until the body ends or is dropped.
#[derive(Debug)]
struct Download {
    inner: hyper::body::Incoming,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    /// Whether `timer` is running for the chunk being waited for.
    armed: bool,
    permit: Option<OwnedSemaphorePermit>,
}

impl ProxyBody {
    /// A body of one chunk (or none when empty).
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self { kind: Kind::Full((!bytes.is_empty()).then_some(bytes)) }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self { kind: Kind::Full(None) }
    }

    pub(crate) fn stream(inner: hyper::body::Incoming, idle: Duration, permit: OwnedSemaphorePermit) -> Self {
        let download =
            Download { inner, idle, timer: Box::pin(tokio::time::sleep(idle)), armed: false, permit: Some(permit) };
        Self { kind: Kind::Stream(Box::new(download)) }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream(d) => d.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Stream(d) => d.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Stream(d) => d.inner.size_hint(),
        }
    }
}

impl Download {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if !self.armed {
            // The wait for this chunk starts now: time spent while the client was not reading
            // (and nobody polled) is not the upstream's.
            self.timer.as_mut().reset(Instant::now() + self.idle);
            self.armed = true;
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.armed = false;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                tracing::debug!(error = %e, "upstream response body broke off");
                self.permit = None;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                self.permit = None;
                Poll::Ready(None)
            }
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    tracing::debug!(idle = ?self.idle, "upstream response body idle timeout");
                    self.permit = None;
                    Poll::Ready(Some(Err(IdleTimeout(self.idle).into())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// How far the request body going up has come, shared between the body (which the client
/// connection feeds) and the wait for the upstream's answer (which decides on timeouts).
#[derive(Debug)]
pub(crate) struct Progress {
    base: Instant,
    /// Nanoseconds after `base` of the last chunk (or of the start).
    last: AtomicU64,
    /// Nanoseconds after `base` when the body ended; `u64::MAX` while it has not.
    done: AtomicU64,
    /// The body's last poll was left waiting for the client to send more.
    waiting_on_client: AtomicBool,
    /// The client's body failed (it went away mid-upload).
    client_failed: AtomicBool,
}

/// Which wait the upstream request is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// The request body is still going up.
    Upload,
    /// The request is sent; the answer's head is awaited.
    FirstByte,
}

impl Progress {
    pub(crate) fn new(done: bool) -> Arc<Self> {
        Arc::new(Self {
            base: Instant::now(),
            last: AtomicU64::new(0),
            done: AtomicU64::new(if done { 0 } else { u64::MAX }),
            waiting_on_client: AtomicBool::new(false),
            client_failed: AtomicBool::new(false),
        })
    }

    fn since_base(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
    }

    fn touch(&self) {
        self.last.store(self.since_base(), Ordering::Relaxed);
    }

    fn finish(&self) {
        let _ = self.done.compare_exchange(u64::MAX, self.since_base(), Ordering::Relaxed, Ordering::Relaxed);
    }

    /// When the current wait runs out, and which wait it is.
    pub(crate) fn deadline(&self, first_byte: Duration, idle: Duration) -> (Instant, Wait) {
        match self.done.load(Ordering::Relaxed) {
            u64::MAX => {
                let last = self.base + Duration::from_nanos(self.last.load(Ordering::Relaxed));
                (last + idle, Wait::Upload)
            }
            done => (self.base + Duration::from_nanos(done) + first_byte, Wait::FirstByte),
        }
    }

    /// Whether an upload stall is the client's (it sends nothing) rather than the upstream's
    /// (it reads nothing).
    pub(crate) fn stalled_on_client(&self) -> bool {
        self.waiting_on_client.load(Ordering::Relaxed)
    }

    /// Whether the client's body failed: an error then is the client's, not the upstream's.
    pub(crate) fn client_failed(&self) -> bool {
        self.client_failed.load(Ordering::Relaxed)
    }
}

/// The request body going up: the client's body, chunk by chunk, reporting progress.
pub(crate) struct Upload<B> {
    inner: Pin<Box<B>>,
    progress: Arc<Progress>,
}

impl<B> Upload<B> {
    pub(crate) fn new(inner: B, progress: Arc<Progress>) -> Self {
        Self { inner: Box::pin(inner), progress }
    }
}

impl<B> Body for Upload<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = self.inner.as_mut().poll_frame(cx);
        let p = &self.progress;
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                p.waiting_on_client.store(false, Ordering::Relaxed);
                p.touch();
                if self.inner.is_end_stream() {
                    self.progress.finish();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                p.waiting_on_client.store(false, Ordering::Relaxed);
                p.client_failed.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                p.waiting_on_client.store(false, Ordering::Relaxed);
                p.finish();
                Poll::Ready(None)
            }
            Poll::Pending => {
                p.waiting_on_client.store(true, Ordering::Relaxed);
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
