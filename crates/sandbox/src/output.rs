//! Bounded capture of a guest's stdout and stderr, and the budget of what
//! a call may put in the server log.

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

    /// The same capture, emptied: a kept instance writes into the captures
    /// it was made with, one call after another.
    pub fn emptied(&self) -> Capture {
        let mut b = self.0.lock().unwrap_or_else(|e| e.into_inner());
        b.bytes.clear();
        b.written = 0;
        self.clone()
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

/// What one source of a call's lines (its `log` calls, its stdout, its
/// stderr) may put in the server log: a number of lines, each cut at a
/// length, and a number of bytes in all.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineBudget {
    lines_left: usize,
    bytes_left: usize,
    line_bytes: usize,
}

impl LineBudget {
    pub fn new(lines: usize, bytes: usize, line_bytes: usize) -> Self {
        LineBudget {
            lines_left: lines,
            bytes_left: bytes,
            line_bytes,
        }
    }

    /// The part of `line` that may be logged, cut to the line length and
    /// the bytes left; `None` once the lines or the bytes are spent.
    pub fn admit<'a>(&mut self, line: &'a str) -> Option<&'a str> {
        if self.lines_left == 0 || self.bytes_left == 0 {
            return None;
        }
        let kept = truncate(line, self.line_bytes.min(self.bytes_left));
        self.lines_left -= 1;
        self.bytes_left -= kept.len();
        Some(kept)
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
    fn a_line_budget_bounds_lines_their_length_and_bytes() {
        let mut b = LineBudget::new(3, 8, 4);
        assert_eq!(b.admit("ab"), Some("ab"));
        assert_eq!(b.admit("cdefgh"), Some("cdef"));
        assert_eq!(b.admit("ijkl"), Some("ij"), "2 bytes left");
        assert_eq!(b.admit("m"), None);
        let mut b = LineBudget::new(2, 100, 100);
        assert!(b.admit("a").is_some() && b.admit("b").is_some());
        assert_eq!(b.admit("c"), None, "out of lines");
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
