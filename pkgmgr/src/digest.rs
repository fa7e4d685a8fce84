//! Content digests (`sha256:<64 hex>`), validated so a digest can safely name a file.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A validated `sha256:<hex>` digest. Only sha256 is accepted: it is what every registry and
/// Cosign use, and it keeps digests safe to use as file names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The Cosign signature tag for this digest: `sha256-<hex>.sig`.
    pub fn signature_tag(&self) -> String {
        format!("sha256-{}.sig", self.hex())
    }
}

impl FromStr for Digest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.strip_prefix("sha256:") {
            Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => {
                Ok(Self(s.to_owned()))
            }
            _ => Err(format!("`{s}` is not a sha256 digest (sha256:<64 lowercase hex>)")),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wrap `inner`.
    pub fn new(inner: W) -> Self {
        Self { inner, hasher: Sha256::new(), written: 0 }
    }

    /// The digest and size of everything written, and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        let digest = Digest(format!("sha256:{}", hex::encode(self.hasher.finalize())));
        (digest, self.written, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes what it reads, optionally copies it to a file (the cache), and refuses
/// to read more than the size the descriptor declared.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
    limit: u64,
    tee: Option<std::fs::File>,
}

impl<R: io::Read> HashingReader<R> {
    /// Wrap `inner`, expecting at most `limit` bytes; copy them to `tee` when given.
    pub fn new(inner: R, limit: u64, tee: Option<std::fs::File>) -> Self {
        Self { inner, hasher: Sha256::new(), read: 0, limit, tee }
    }

    /// Read to the end (so the digest covers every byte), then return digest, size and the tee.
    pub fn finish(mut self) -> io::Result<(Digest, u64, Option<std::fs::File>)> {
        io::copy(&mut self, &mut io::sink())?;
        let digest = Digest(format!("sha256:{}", hex::encode(self.hasher.finalize())));
        Ok((digest, self.read, self.tee))
    }
}

impl<R: io::Read> io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("blob is larger than the {} bytes its descriptor declares", self.limit)));
        }
        self.hasher.update(&buf[..n]);
        if let Some(tee) = &mut self.tee {
            tee.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}

/// An async reader that checks, at the end, that what passed through it has the expected
/// digest and size; a mismatch is an `InvalidData` error instead of the end of the stream, so
/// whoever consumes it (an upload, a tar writer) fails rather than keeps bad bytes.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
    expected: Digest,
    size: u64,
}

impl<R> VerifyingReader<R> {
    /// Wrap `inner`, expecting `size` bytes with digest `expected`.
    pub fn new(inner: R, expected: Digest, size: u64) -> Self {
        Self { inner, hasher: Sha256::new(), read: 0, expected, size }
    }
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for VerifyingReader<R> {
    fn poll_read(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> std::task::Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_read(cx, buf) {
            std::task::Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                this.read += new.len() as u64;
                this.hasher.update(new);
                if this.read > this.size || (new.is_empty() && this.read != this.size) {
                    return std::task::Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, format!("blob {} is {} bytes, not {}: tampered or damaged", this.expected, this.read, this.size))));
                }
                if new.is_empty() {
                    let actual = Digest(format!("sha256:{}", hex::encode(this.hasher.clone().finalize())));
                    if actual != this.expected {
                        return std::task::Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, format!("blob {} arrived as {actual}: tampered or damaged", this.expected))));
                    }
                }
                std::task::Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// Hash a file without loading it into memory.
pub fn digest_file(path: &std::path::Path) -> io::Result<(Digest, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut writer = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut writer)?;
    let (digest, size, _) = writer.finish();
    Ok((digest, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_sha256() {
        let d = Digest::of(b"");
        assert_eq!(d.as_str(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(d.as_str().parse::<Digest>().unwrap(), d);
        for bad in ["sha256:abc", "sha512:00", "sha256:../../etc/passwd", "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
        assert_eq!(d.signature_tag(), "sha256-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855.sig");
    }
}
