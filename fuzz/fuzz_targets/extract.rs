//! Pack layer extraction (`aibox_pkgmgr::extract::extract`) on hostile tar streams.
//!
//! Input: the first byte picks the mode. Even: the rest is the tar stream as is. Odd: the rest
//! is an `arbitrary` list of entries (hostile names: `..`, absolute paths, empty components,
//! names longer than the header field via GNU long-name and PAX records; symlinks and hard
//! links pointing out or through each other; devices, fifos, unknown types; sizes that lie),
//! built into a tar with the `tar` crate's `Header`.
//!
//! Layout: `root/staging` (the destination, empty) and `root/outside/keep` (a marker file).
//! Properties, whether extraction succeeds or fails:
//! - nothing exists in `root` but `staging` and the untouched `outside/keep` (content, mode and
//!   link count unchanged);
//! - no symlink in `staging` resolves outside it, dangling or not (resolved component by
//!   component, following the symlinks the archive made);
//! - every inode in `staging` has all its hard links in `staging`;
//! - no setuid/setgid/sticky bit and no group/other write permission (umask 022);
//! - the regular files in `staging` hold at most `max_bytes`, and on success the counts stay
//!   within the limits.
#![no_main]

use std::collections::HashMap;
use std::io::Cursor;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use aibox_pkgmgr::extract::{Limits, extract};
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

const PREFIX: &str = "opt/toolpacks/p/1.0.0";
const LIMITS: Limits = Limits { max_bytes: 64 << 10, max_entries: 64, max_path_len: 1024 };

#[derive(Arbitrary, Debug)]
enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
    Continuous,
    Other(u8),
}

#[derive(Arbitrary, Debug)]
enum Part {
    Prefix,
    DotPrefix,
    Opt,
    Toolpacks,
    Pack,
    Version,
    OtherPack,
    Name(u8),
    Dot,
    DotDot,
    Empty,
    Long(u8),
    Raw(Vec<u8>),
}

/// How an entry path starts: mostly under the pack's prefix, where extraction does its work.
#[derive(Arbitrary, Debug)]
enum Root {
    Prefix,
    UnderPrefix,
    DotPrefix,
    Relative,
    Absolute,
}

/// How a link target starts: symlink targets are relative to the link, hard link targets are
/// archive paths (under the prefix).
#[derive(Arbitrary, Debug)]
enum LinkRoot {
    Relative,
    Climbing,
    Prefix,
    Absolute,
}

#[derive(Arbitrary, Debug)]
enum NameStyle {
    /// In the header's own name field (cut at 100 bytes).
    Header,
    /// A GNU `././@LongLink` record first.
    GnuLong,
    /// A PAX extended header (`path=`, `linkpath=`) first.
    Pax,
}

#[derive(Arbitrary, Debug)]
enum HeaderStyle {
    Gnu,
    Ustar,
    Old,
}

#[derive(Arbitrary, Debug)]
struct Entry {
    kind: Kind,
    root: Root,
    path: Vec<Part>,
    link_root: LinkRoot,
    link: Vec<Part>,
    mode: u16,
    data: Vec<u8>,
    /// Header size = data length + this (a lie when non-zero).
    size_lie: i8,
    names: NameStyle,
    header: HeaderStyle,
}

#[derive(Arbitrary, Debug)]
struct Archive {
    entries: Vec<Entry>,
    end_marker: bool,
    trailer: Vec<u8>,
}

fn part_bytes(p: &Part) -> Vec<u8> {
    match p {
        Part::Prefix => PREFIX.into(),
        Part::DotPrefix => format!("./{PREFIX}/.").into(),
        Part::Opt => b"opt".to_vec(),
        Part::Toolpacks => b"toolpacks".to_vec(),
        Part::Pack => b"p".to_vec(),
        Part::Version => b"1.0.0".to_vec(),
        Part::OtherPack => b"q".to_vec(),
        Part::Name(n) => vec![b'a' + n % 6],
        Part::Dot => b".".to_vec(),
        Part::DotDot => b"..".to_vec(),
        Part::Empty => Vec::new(),
        Part::Long(n) => vec![b'l'; 90 + usize::from(*n)],
        Part::Raw(bytes) => bytes.iter().copied().filter(|b| *b != 0).take(32).collect(),
    }
}

fn join(start: &[u8], parts: &[Part]) -> Vec<u8> {
    let mut out = start.to_vec();
    for p in parts.iter().take(8) {
        if !out.is_empty() && !out.ends_with(b"/") {
            out.push(b'/');
        }
        out.extend(part_bytes(p));
    }
    out
}

fn entry_path(root: &Root, parts: &[Part]) -> Vec<u8> {
    match root {
        Root::Prefix | Root::UnderPrefix => join(PREFIX.as_bytes(), parts),
        Root::DotPrefix => join(format!("./{PREFIX}/").as_bytes(), parts),
        Root::Relative => join(b"", parts),
        Root::Absolute => join(b"/", parts),
    }
}

fn link_path(root: &LinkRoot, parts: &[Part]) -> Vec<u8> {
    match root {
        LinkRoot::Relative => join(b"", parts),
        LinkRoot::Climbing => join(b"../", parts),
        LinkRoot::Prefix => join(PREFIX.as_bytes(), parts),
        LinkRoot::Absolute => join(b"/", parts),
    }
}

fn pad(out: &mut Vec<u8>) {
    let rem = out.len() % 512;
    if rem != 0 {
        out.resize(out.len() + 512 - rem, 0);
    }
}

fn new_header(style: &HeaderStyle) -> tar::Header {
    match style {
        HeaderStyle::Gnu => tar::Header::new_gnu(),
        HeaderStyle::Ustar => tar::Header::new_ustar(),
        HeaderStyle::Old => tar::Header::new_old(),
    }
}

/// A record (GNU long name or PAX header) carrying `body`.
fn record(out: &mut Vec<u8>, kind: tar::EntryType, body: &[u8]) {
    let mut h = tar::Header::new_gnu();
    let name = if kind == tar::EntryType::XHeader { &b"PaxHeaders/x"[..] } else { &b"././@LongLink"[..] };
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(body.len() as u64);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(body);
    pad(out);
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    // "<len> <key>=<value>\n", where len counts itself.
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len.to_string().len() + rest != len {
        len += 1;
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

fn build(archive: &Archive) -> Vec<u8> {
    let mut out = Vec::new();
    for e in archive.entries.iter().take(24) {
        let path = entry_path(&e.root, &e.path);
        let link = link_path(&e.link_root, &e.link);
        let kind = match e.kind {
            Kind::File => tar::EntryType::Regular,
            Kind::Dir => tar::EntryType::Directory,
            Kind::Symlink => tar::EntryType::Symlink,
            Kind::Hardlink => tar::EntryType::Link,
            Kind::Char => tar::EntryType::Char,
            Kind::Block => tar::EntryType::Block,
            Kind::Fifo => tar::EntryType::Fifo,
            Kind::Continuous => tar::EntryType::Continuous,
            Kind::Other(b) => tar::EntryType::new(b),
        };
        let has_link = matches!(e.kind, Kind::Symlink | Kind::Hardlink);
        match e.names {
            NameStyle::Header => {}
            NameStyle::GnuLong => {
                let mut body = path.clone();
                body.push(0);
                record(&mut out, tar::EntryType::GNULongName, &body);
                if has_link {
                    let mut body = link.clone();
                    body.push(0);
                    record(&mut out, tar::EntryType::GNULongLink, &body);
                }
            }
            NameStyle::Pax => {
                let mut body = pax_record("path", &path);
                if has_link {
                    body.extend(pax_record("linkpath", &link));
                }
                record(&mut out, tar::EntryType::XHeader, &body);
            }
        }
        let mut h = new_header(&e.header);
        {
            let old = h.as_old_mut();
            let n = path.len().min(100);
            old.name[..n].copy_from_slice(&path[..n]);
            if has_link {
                let n = link.len().min(100);
                old.linkname[..n].copy_from_slice(&link[..n]);
            }
        }
        h.set_entry_type(kind);
        h.set_mode(u32::from(e.mode) & 0o7777);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        let data: &[u8] = if matches!(e.kind, Kind::File | Kind::Continuous | Kind::Other(_)) { &e.data[..e.data.len().min(4096)] } else { &[] };
        let size = (data.len() as i64 + i64::from(e.size_lie)).max(0);
        h.set_size(size as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        pad(&mut out);
    }
    if archive.end_marker {
        out.extend_from_slice(&[0; 1024]);
    }
    out.extend(archive.trailer.iter().take(1024));
    out
}

/// Resolve `rel` (a path relative to `staging`), following symlinks on disk the way the
/// kernel would, without requiring the end to exist. `Err` when it leaves `staging`;
/// `Ok(None)` when it loops (more than 40 symlinks followed in all: ELOOP, nothing reached).
fn resolve(staging: &Path, rel: &Path, budget: &mut u32) -> Result<Option<PathBuf>, String> {
    let mut at = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !at.pop() {
                    return Err(format!("`..` above the root at {}", rel.display()));
                }
            }
            Component::RootDir | Component::Prefix(_) => return Err(format!("absolute {}", rel.display())),
            Component::Normal(n) => {
                at.push(n);
                let full = staging.join(&at);
                if let Ok(meta) = std::fs::symlink_metadata(&full)
                    && meta.file_type().is_symlink()
                {
                    if *budget == 0 {
                        return Ok(None);
                    }
                    *budget -= 1;
                    let target = std::fs::read_link(&full).map_err(|e| e.to_string())?;
                    at.pop();
                    if target.is_absolute() {
                        return Err(format!("symlink {} -> absolute {}", full.display(), target.display()));
                    }
                    match resolve(staging, &at.join(&target), budget)? {
                        Some(p) => at = p,
                        None => return Ok(None),
                    }
                }
            }
        }
    }
    Ok(Some(at))
}

fn check(root: &Path, staging: &Path, keep: &Path, input_len: usize) {
    // Only `staging` and the marker.
    let allowed_outside = [root.to_path_buf(), root.join("outside"), keep.to_path_buf()];
    let mut inodes: HashMap<(u64, u64), (u64, u64)> = HashMap::new(); // (dev, ino) → (nlink, seen)
    let mut file_bytes: HashMap<(u64, u64), u64> = HashMap::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        let entry = entry.unwrap_or_else(|e| panic!("cannot walk the extraction root: {e}"));
        let path = entry.path();
        assert!(path.starts_with(staging) || allowed_outside.iter().any(|a| a == path), "extraction wrote {} outside the destination", path.display());
        if !path.starts_with(staging) || path == staging {
            continue;
        }
        let meta = entry.metadata().expect("metadata");
        let rel = path.strip_prefix(staging).expect("under staging");
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(path).expect("read_link");
            let link_dir = rel.parent().unwrap_or(Path::new(""));
            if let Err(why) = resolve(staging, &link_dir.join(&target), &mut 40) {
                panic!("symlink {} -> {} escapes the destination: {why}", rel.display(), target.display());
            }
            if let Ok(real) = std::fs::canonicalize(path) {
                let real_staging = std::fs::canonicalize(staging).expect("staging");
                assert!(real.starts_with(&real_staging), "symlink {} resolves to {}", rel.display(), real.display());
            }
            continue;
        }
        let mode = meta.mode() & 0o7777;
        assert_eq!(mode & 0o7022, 0, "{} has mode {mode:o}", rel.display());
        assert!(meta.file_type().is_dir() || meta.file_type().is_file(), "{} is a special file ({:?})", rel.display(), meta.file_type());
        if meta.file_type().is_file() {
            let seen = inodes.entry((meta.dev(), meta.ino())).or_insert((meta.nlink(), 0));
            seen.1 += 1;
            file_bytes.insert((meta.dev(), meta.ino()), meta.len());
        }
    }
    for ((_, ino), (nlink, seen)) in &inodes {
        assert_eq!(nlink, seen, "inode {ino} has {nlink} links but {seen} in the destination: a hard link leads outside");
    }
    let total: u64 = file_bytes.values().sum();
    assert!(total <= LIMITS.max_bytes, "{total} bytes of files, more than max_bytes");
    assert!(total <= input_len as u64, "{total} bytes of files from {input_len} bytes of input");
    let keep_meta = std::fs::symlink_metadata(keep).expect("the marker is still there");
    assert!(keep_meta.file_type().is_file() && keep_meta.nlink() == 1 && keep_meta.mode() & 0o7777 == 0o600, "the marker was changed: {keep_meta:?}");
    assert_eq!(std::fs::read(keep).expect("marker"), b"keep", "the marker's content was changed");
}

fn run(tar_bytes: &[u8]) {
    static UMASK: std::sync::Once = std::sync::Once::new();
    UMASK.call_once(|| {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let staging = root.join("staging");
    let keep = root.join("outside").join("keep");
    std::fs::create_dir(&staging).expect("staging");
    std::fs::create_dir(root.join("outside")).expect("outside");
    std::fs::write(&keep, b"keep").expect("marker");
    std::fs::set_permissions(&keep, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    let result = extract(Cursor::new(tar_bytes), &staging, PREFIX, &LIMITS);
    if let Some(out) = std::env::var_os("AIBOX_FUZZ_DEBUG") {
        // Debugging one input: the result, and the tar stream into the file named.
        eprintln!("extract: {result:?}");
        if out != "1" {
            let _ = std::fs::write(out, tar_bytes);
        }
    }
    if let Ok(done) = &result {
        assert!(done.entries <= LIMITS.max_entries && done.bytes <= LIMITS.max_bytes, "{done:?}");
    }
    check(root, &staging, &keep, tar_bytes.len());
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        run(rest);
    } else {
        let Ok(archive) = Archive::arbitrary_take_rest(Unstructured::new(rest)) else { return };
        run(&build(&archive));
    }
});
