//! Bounded capture of a guest's stdout and stderr.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Keeps the first `cap` bytes written and counts the rest. Writes never
/// fail: a chatty guest loses output, not its call (wasmtime's
/// `MemoryOutputPipe` closes the stream when full, and Rust's `println!`
/// then panics in the guest).
#[derive(Clone)]
pub(crate) struct Capture(Arc<Mutex<Buffer>>);

struct Buffer {
    bytes: Vec<u8>,
    cap: usize,
    written: u64,
}

impl Capture {
    pub fn new(cap: usize) -> Self {
        Capture(Arc::new(Mutex::new(Buffer {
            bytes: Vec::new(),
            cap,
            written: 0,
        })))
    }

    /// The first `max` kept bytes, leaving them in place.
    pub fn peek(&self, max: usize) -> Vec<u8> {
        let b = self.0.lock().unwrap_or_else(|e| e.into_inner());
        b.bytes[..b.bytes.len().min(max)].to_vec()
    }

    /// The kept bytes and the total written.
    pub fn take(&self) -> (Vec<u8>, u64) {
        let mut b = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (std::mem::take(&mut b.bytes), b.written)
    }
}

impl AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut b = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let room = b.cap.saturating_sub(b.bytes.len());
        b.bytes.extend_from_slice(&buf[..buf.len().min(room)]);
        b.written += buf.len() as u64;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max.min(s.len()))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn keeps_the_first_bytes_and_counts_all() {
        let c = Capture::new(4);
        let mut w = c.clone();
        w.write_all(b"abc").await.unwrap();
        w.write_all(b"defgh").await.unwrap();
        assert_eq!(c.take(), (b"abcd".to_vec(), 8));
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
