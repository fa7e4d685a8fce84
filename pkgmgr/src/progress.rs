//! Progress events the library reports; the binary draws them (indicatif bars on a terminal, a
//! line per pack otherwise). The library never prints.

use std::io::{self, Read};
use std::sync::Arc;

/// Receives progress of long work.
pub trait Reporter: Send + Sync {
    /// Work on `bytes` bytes starts (`verb`: Downloading, Extracting, Copying; `label`: what,
    /// e.g. `java 21.0.5`); returns an id for it.
    fn start(&self, verb: &str, label: &str, bytes: u64) -> usize;
    /// `bytes` more of that layer were read.
    fn advance(&self, id: usize, bytes: u64);
    /// That layer is extracted.
    fn finish(&self, id: usize);
}

/// Reports nothing.
pub struct Silent;

impl Reporter for Silent {
    fn start(&self, _: &str, _: &str, _: u64) -> usize {
        0
    }
    fn advance(&self, _: usize, _: u64) {}
    fn finish(&self, _: usize) {}
}

/// A reader (sync or async) that reports what passes through it.
pub struct ReportingReader<R> {
    inner: R,
    reporter: Arc<dyn Reporter>,
    id: usize,
}

impl<R> ReportingReader<R> {
    /// Wrap `inner`.
    pub fn new(inner: R, reporter: Arc<dyn Reporter>, id: usize) -> Self {
        Self { inner, reporter, id }
    }
}

impl<R: Read> Read for ReportingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.reporter.advance(self.id, n as u64);
        Ok(n)
    }
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for ReportingReader<R> {
    fn poll_read(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> std::task::Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let poll = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &poll {
            this.reporter.advance(this.id, (buf.filled().len() - before) as u64);
        }
        poll
    }
}
