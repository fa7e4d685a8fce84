//! Progress events the library reports; the binary draws them (indicatif bars on a terminal, a
//! line per pack otherwise). The library never prints.

use std::io::{self, Read};
use std::sync::Arc;

/// Receives progress of long work.
pub trait Reporter: Send + Sync {
    /// A pack's layer starts downloading (or reading from the cache); returns an id for it.
    fn start(&self, pack: &str, version: &str, bytes: u64, cached: bool) -> usize;
    /// `bytes` more of that layer were read.
    fn advance(&self, id: usize, bytes: u64);
    /// That layer is extracted.
    fn finish(&self, id: usize);
}

/// Reports nothing.
pub struct Silent;

impl Reporter for Silent {
    fn start(&self, _: &str, _: &str, _: u64, _: bool) -> usize {
        0
    }
    fn advance(&self, _: usize, _: u64) {}
    fn finish(&self, _: usize) {}
}

/// A reader that reports what passes through it.
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
