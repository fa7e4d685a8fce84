//! Pinned sources of a pack, placed into the staging tree at build time.
//!
//! - `url` + `sha256`: a download (`https://`) or a file (`file://`, relative to the pack folder,
//!   or absolute), checked against its pin before use, then unpacked into `dest` by its
//!   extension (`.tar.gz`/`.tgz`, `.tar.xz`, `.tar.zst`, `.zip`; `strip_components` drops
//!   leading path parts), or copied there as is. Mirrors rewrite URL prefixes first
//!   (`AIBOX_SOURCE_MIRRORS`, config `source_mirrors`: `https://github.com/=https://nexus/...`).
//!   Downloads are cached by sha256 under `$XDG_CACHE_HOME/aibox/sources`.
//! - `npm: <package>@<exact version>`: installed with the build host's `npm` into `dest`
//!   (`--omit=dev --ignore-scripts`). A `package-lock.json` beside `pack.yaml` pins the whole
//!   tree (`npm ci`, integrity hashes checked by npm); without one (`aibox pack lint` refuses
//!   that), npm resolves and the lock it writes is kept in the pack.
//! - `pypi: <name>==<exact version>`: installed with the build host's `python3 -m pip` into
//!   `dest` (wheels only, no bytecode). A `requirements.lock` beside `pack.yaml` (pip's hash
//!   format) pins the whole tree (`--require-hashes`); without one, pip resolves and a
//!   `requirements.lock` with the sha256 of every wheel is written into the pack.
//!
//! - `deb: <package>=<exact version>`: fetched with the build host's `apt-get download` (apt
//!   checks it against the signed archive index; a `sha256` pins it further), and its files
//!   extracted into `dest` (`strip_components` applies to its `./usr/...` paths).
//!
//! Registries and mirrors come from the tools' own settings (`npm_config_registry`,
//! `PIP_INDEX_URL`, their config files), so a build inside a site uses the site's mirror.

use std::path::{Path, PathBuf};
use std::process::Command;

use aibox_schema::Source;
use aibox_schema::manifest::{split_deb_spec, split_npm_spec, split_pypi_spec};

use crate::digest::digest_file;

/// Lockfiles a pack folder may carry to pin npm and PyPI trees.
pub const NPM_LOCK: &str = "package-lock.json";
/// See [`NPM_LOCK`].
pub const PIP_LOCK: &str = "requirements.lock";

/// A URL prefix rewrite: sites fetch upstream sources through their own proxy (Nexus).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// Upstream prefix, e.g. `https://github.com/`.
    pub from: String,
    /// What replaces it, e.g. `https://nexus.internal/repository/github/`.
    pub to: String,
}

impl std::str::FromStr for Mirror {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('=') {
            Some((from, to)) if from.contains("://") && to.contains("://") => Ok(Self { from: from.trim().to_owned(), to: to.trim().to_owned() }),
            _ => Err(format!("source mirror `{s}`: expected UPSTREAM_PREFIX=MIRROR_PREFIX, e.g. https://github.com/=https://nexus.internal/repository/github/")),
        }
    }
}

/// `url` with the longest matching mirror prefix replaced.
pub fn rewrite(url: &str, mirrors: &[Mirror]) -> String {
    mirrors
        .iter()
        .filter(|m| url.starts_with(&m.from))
        // The longest prefix; among equals the first listed (AIBOX_SOURCE_MIRRORS, then the
        // user's configuration, then the system's).
        .rev()
        .max_by_key(|m| m.from.len())
        .map_or_else(|| url.to_owned(), |m| format!("{}{}", m.to, &url[m.from.len()..]))
}

/// Where the build gets what it needs besides the pack folder.
#[derive(Debug, Clone, Default)]
pub struct Fetch {
    /// URL prefix rewrites.
    pub mirrors: Vec<Mirror>,
    /// Download cache (by sha256); `None`: no cache.
    pub cache: Option<PathBuf>,
}

impl Fetch {
    /// Mirrors given, cache in `$XDG_CACHE_HOME/aibox/sources` (or `~/.cache/...`).
    pub fn new(mirrors: Vec<Mirror>) -> Self {
        let base = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).or_else(|| std::env::home_dir().map(|h| h.join(".cache")));
        Self { mirrors, cache: base.map(|b| b.join("aibox/sources")) }
    }
}

/// Place every source of a pack into `staging`. `work` is scratch space of the build.
pub fn place_all(pack_dir: &Path, sources: &[Source], staging: &Path, work: &Path, fetch: &Fetch) -> Result<(), String> {
    for source in sources {
        let dest = staging.join(source.dest.as_deref().unwrap_or("."));
        std::fs::create_dir_all(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        if let Some(url) = &source.url {
            let file = obtain(pack_dir, url, source.sha256.as_deref().unwrap_or_default(), work, fetch)?;
            unpack(&file, url, &dest, source.strip_components.unwrap_or(0)).map_err(|e| format!("source {url}: {e}"))?;
        } else if let Some(spec) = &source.npm {
            install_npm(pack_dir, spec, &dest)?;
        } else if let Some(spec) = &source.pypi {
            install_pypi(pack_dir, spec, &dest, work)?;
        } else if let Some(spec) = &source.deb {
            install_deb(spec, source.sha256.as_deref(), &dest, work, source.strip_components.unwrap_or(0))?;
        }
    }
    Ok(())
}

/// The verified file behind a `url` source: a local file, or a download (cached by sha256).
fn obtain(pack_dir: &Path, url: &str, expected: &str, work: &Path, fetch: &Fetch) -> Result<PathBuf, String> {
    let mismatch = |from: &str, got: &str| format!("source {url}{from} has sha256 {got}, but pack.yaml pins {expected}; nothing was built");
    if let Some(path) = url.strip_prefix("file://") {
        let path = if Path::new(path).is_absolute() { PathBuf::from(path) } else { pack_dir.join(path) };
        let (digest, _) = digest_file(&path).map_err(|e| format!("source {}: {e}", path.display()))?;
        return if digest.hex() == expected { Ok(path) } else { Err(mismatch("", digest.hex())) };
    }
    let cached = fetch.cache.as_ref().map(|c| c.join(expected));
    if let Some(c) = &cached
        && digest_file(c).is_ok_and(|(d, _)| d.hex() == expected)
    {
        return Ok(c.clone());
    }
    let actual = rewrite(url, &fetch.mirrors);
    let via = if actual == url { String::new() } else { format!(" (fetched from {actual})") };
    // Download beside the cache entry (same filesystem: the rename cannot fail across devices),
    // and only a verified file takes the entry's name.
    let dir = cached.as_ref().and_then(|c| c.parent()).filter(|d| std::fs::create_dir_all(d).is_ok()).map_or_else(|| work.to_owned(), Path::to_owned);
    let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| format!("cannot write to {}: {e}", dir.display()))?;
    let digest = std::thread::scope(|s| s.spawn(|| download(&actual, tmp.path())).join()).map_err(|_| "the download thread panicked".to_owned())?.map_err(|e| format!("cannot download {actual}: {e}"))?;
    if digest.hex() != expected {
        return Err(mismatch(&via, digest.hex()));
    }
    let to = cached.filter(|c| c.parent() == Some(dir.as_path())).unwrap_or_else(|| work.join(format!("download-{expected}")));
    tmp.persist(&to).map_err(|e| format!("cannot keep the download at {}: {}", to.display(), e.error))?;
    Ok(to)
}

/// Stream `url` into `to`, hashing as it goes (blocking client: the build is synchronous and runs
/// on its own thread).
fn download(url: &str, to: &Path) -> Result<crate::digest::Digest, String> {
    let client = reqwest::blocking::Client::builder().user_agent(concat!("aibox/", env!("CARGO_PKG_VERSION"))).build().map_err(|e| e.to_string())?;
    let mut response = client.get(url).send().and_then(reqwest::blocking::Response::error_for_status).map_err(|e| error_chain(&e))?;
    let file = std::fs::File::create(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let mut writer = crate::digest::HashingWriter::new(std::io::BufWriter::new(file));
    std::io::copy(&mut response, &mut writer).map_err(|e| e.to_string())?;
    let (digest, _, mut inner) = writer.finish();
    std::io::Write::flush(&mut inner).map_err(|e| e.to_string())?;
    Ok(digest)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}

/// Archive kinds, by the URL's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Archive {
    TarGz,
    TarXz,
    TarZst,
    Tar,
    Zip,
    Plain,
}

fn archive_kind(url: &str) -> Archive {
    let name = url.rsplit('/').next().unwrap_or(url).to_ascii_lowercase();
    let name = name.split(['?', '#']).next().unwrap_or_default();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Archive::TarGz
    } else if name.ends_with(".tar.xz") || name.ends_with(".txz") {
        Archive::TarXz
    } else if name.ends_with(".tar.zst") || name.ends_with(".tzst") {
        Archive::TarZst
    } else if name.ends_with(".tar") {
        Archive::Tar
    } else if name.ends_with(".zip") {
        Archive::Zip
    } else {
        Archive::Plain
    }
}

/// `path` without its first `strip` components; `None` when nothing is left. Refuses absolute
/// paths and `..`.
fn stripped(path: &Path, strip: u32) -> Result<Option<PathBuf>, String> {
    use std::path::Component;
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_owned()),
            Component::CurDir => {}
            _ => return Err(format!("archive entry `{}` leaves the archive (absolute or `..`)", path.display())),
        }
    }
    let kept: PathBuf = parts.into_iter().skip(strip as usize).collect();
    Ok((!kept.as_os_str().is_empty()).then_some(kept))
}

/// Unpack `file` into `dest` by the kind `url` names, or copy it there.
fn unpack(file: &Path, url: &str, dest: &Path, strip: u32) -> Result<(), String> {
    let open = || std::fs::File::open(file).map(std::io::BufReader::new).map_err(|e| e.to_string());
    match archive_kind(url) {
        Archive::Plain => {
            let name = url.rsplit('/').next().and_then(|n| n.split(['?', '#']).next()).filter(|n| !n.is_empty()).ok_or("the URL names no file")?;
            let to = dest.join(name);
            std::fs::copy(file, &to).map_err(|e| format!("copying to {}: {e}", to.display()))?;
            let executable = std::fs::metadata(file).is_ok_and(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0);
            // A single downloaded binary (bazel, bazelisk) is meant to run.
            if executable || url.starts_with("https://") {
                std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o755)).map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        Archive::TarGz => untar(flate2::read::GzDecoder::new(open()?), dest, strip),
        Archive::TarZst => untar(zstd::stream::read::Decoder::new(open()?).map_err(|e| e.to_string())?, dest, strip),
        Archive::Tar => untar(open()?, dest, strip),
        Archive::TarXz => {
            let tar = tempfile::NamedTempFile::new_in(dest.parent().unwrap_or(dest)).map_err(|e| e.to_string())?;
            lzma_rs::xz_decompress(&mut open()?, &mut std::io::BufWriter::new(tar.as_file())).map_err(|e| format!("not a valid .tar.xz: {e}"))?;
            untar(std::fs::File::open(tar.path()).map_err(|e| e.to_string())?, dest, strip)
        }
        Archive::Zip => unzip(file, dest, strip),
    }
}

fn untar(reader: impl std::io::Read, dest: &Path, strip: u32) -> Result<(), String> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    for entry in archive.entries().map_err(|e| format!("not a valid tar: {e}"))? {
        let mut entry = entry.map_err(|e| format!("not a valid tar: {e}"))?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        let Some(rel) = stripped(&path, strip)? else { continue };
        let to = dest.join(&rel);
        // Never write through a symlink the archive made, never make one that leaves the tree.
        if rel.ancestors().skip(1).any(|a| !a.as_os_str().is_empty() && dest.join(a).symlink_metadata().is_ok_and(|m| m.file_type().is_symlink())) {
            return Err(format!("archive entry `{}` would be written through a symlink", path.display()));
        }
        if entry.header().entry_type().is_symlink() {
            let target = entry.link_name().map_err(|e| e.to_string())?.unwrap_or_default();
            if !crate::pack::layer::symlink_stays_inside(&rel, &target) {
                return Err(format!(
                    "archive symlink `{}` -> `{}` points outside the tree (absolute links, common in Debian packages, cannot be kept: extract what you need with a build step instead)",
                    path.display(),
                    target.display()
                ));
            }
        }
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        if let Some(target) = entry.link_name().map_err(|e| e.to_string())?
            && entry.header().entry_type().is_hard_link()
        {
            // Hard links name archive paths: strip them the same way.
            let Some(target) = stripped(&target, strip)? else {
                return Err(format!("archive hard link `{}` points at `{}`, which strip_components removes", path.display(), target.display()));
            };
            std::fs::hard_link(dest.join(target), &to).map_err(|e| format!("{}: {e}", to.display()))?;
            continue;
        }
        entry.unpack(&to).map_err(|e| format!("{}: {e}", rel.display()))?;
    }
    Ok(())
}

fn unzip(file: &Path, dest: &Path, strip: u32) -> Result<(), String> {
    let reader = std::fs::File::open(file).map_err(|e| e.to_string())?;
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| format!("not a valid zip: {e}"))?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| format!("not a valid zip: {e}"))?;
        let Some(name) = entry.enclosed_name() else {
            return Err(format!("zip entry `{}` leaves the archive", entry.name().unwrap_or_default()));
        };
        let Some(rel) = stripped(&name, strip)? else { continue };
        let to = dest.join(&rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&to).map_err(|e| format!("{}: {e}", to.display()))?;
            continue;
        }
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let mut out = std::fs::File::create(&to).map_err(|e| format!("{}: {e}", to.display()))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| format!("{}: {e}", rel.display()))?;
        if let Some(mode) = entry.unix_mode() {
            std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(mode & 0o755)).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn install_deb(spec: &str, sha256: Option<&str>, dest: &Path, work: &Path, strip: u32) -> Result<(), String> {
    let (name, _) = split_deb_spec(spec).ok_or_else(|| format!("deb source `{spec}`: expected <package>=<exact version>"))?;
    let dir = work.join(format!("deb-{name}"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    run(Command::new("apt-get").args(["download", "-q", spec]).current_dir(&dir), "apt-get download")?;
    let file = std::fs::read_dir(&dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| format!("apt-get download {spec} left no .deb"))?;
    if let Some(expected) = sha256 {
        let (digest, _) = digest_file(&file).map_err(|e| e.to_string())?;
        if digest.hex() != expected {
            return Err(format!("deb source {spec} has sha256 {}, but pack.yaml pins {expected}; nothing was built", digest.hex()));
        }
    }
    let mut child = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run dpkg-deb (is it installed on the build host?): {e}"))?;
    let stdout = child.stdout.take().ok_or("dpkg-deb gave no output")?;
    let unpacked = untar(stdout, dest, strip);
    let status = child.wait().map_err(|e| e.to_string())?;
    unpacked.map_err(|e| format!("deb source {spec}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("dpkg-deb --fsys-tarfile {} failed with {status}", file.display())) }
}

fn install_npm(pack_dir: &Path, spec: &str, dest: &Path) -> Result<(), String> {
    let (name, version) = split_npm_spec(spec).ok_or_else(|| format!("npm source `{spec}`: expected <package>@<exact version>"))?;
    let common = ["--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier"];
    let lock = pack_dir.join(NPM_LOCK);
    if lock.is_file() {
        let manifest = pack_dir.join("package.json");
        let text = std::fs::read_to_string(&manifest)
            .map_err(|e| format!("{} is there, so {} must be too: {e}", lock.display(), manifest.display()))?;
        let pinned = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["dependencies"][name].as_str().map(str::to_owned));
        if pinned.as_deref() != Some(version) {
            return Err(format!(
                "npm source `{spec}`: {} pins {name} at {}; make them agree (then run `npm install --package-lock-only` beside pack.yaml)",
                manifest.display(),
                pinned.as_deref().unwrap_or("nothing")
            ));
        }
        // One `npm ci` installs the whole locked tree for every npm source of the pack.
        let installed = std::fs::read(dest.join(NPM_LOCK)).ok() == std::fs::read(&lock).ok() && dest.join("node_modules").is_dir();
        if installed {
            return Ok(());
        }
        for file in ["package.json", NPM_LOCK] {
            std::fs::copy(pack_dir.join(file), dest.join(file)).map_err(|e| format!("copying {file}: {e}"))?;
        }
        return run(Command::new("npm").arg("ci").args(common).current_dir(dest), "npm ci");
    }
    let package_json = dest.join("package.json");
    if !package_json.exists() {
        std::fs::write(&package_json, "{\"private\": true}\n").map_err(|e| format!("{}: {e}", package_json.display()))?;
    }
    run(
        Command::new("npm").arg("install").args(common).arg("--save-exact").arg(format!("{name}@{version}")).current_dir(dest),
        "npm install",
    )
}

fn install_pypi(pack_dir: &Path, spec: &str, dest: &Path, work: &Path) -> Result<(), String> {
    let (name, _) = split_pypi_spec(spec).ok_or_else(|| format!("pypi source `{spec}`: expected <name>==<exact version>"))?;
    let mut pip = Command::new("python3");
    pip.args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet"])
        .args(["--only-binary=:all:", "--no-compile", "--target"])
        .arg(dest);
    let lock = pack_dir.join(PIP_LOCK);
    if lock.is_file() {
        let text = std::fs::read_to_string(&lock).map_err(|e| format!("{}: {e}", lock.display()))?;
        let wanted = normalize(spec);
        if !text.lines().any(|l| normalize(l.split_whitespace().next().unwrap_or_default()) == wanted) {
            return Err(format!("pypi source `{spec}` is not pinned in {}; regenerate it (delete it and build once)", lock.display()));
        }
        std::fs::copy(&lock, dest.join(PIP_LOCK)).map_err(|e| format!("copying {PIP_LOCK}: {e}"))?;
        return run(pip.args(["--no-deps", "--require-hashes", "-r"]).arg(&lock), "pip install");
    }
    let report = work.join(format!("pip-report-{}.json", normalize(name)));
    run(pip.arg("--report").arg(&report).arg(spec), "pip install")?;
    let lock_text = lock_from_report(&report)?;
    std::fs::write(dest.join(PIP_LOCK), lock_text).map_err(|e| format!("writing {PIP_LOCK}: {e}"))
}

/// PEP 503 name normalization (applied to a whole `name==version` line too).
fn normalize(s: &str) -> String {
    s.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// pip's `--report` JSON → requirements lines `name==version --hash=sha256:...`, sorted.
fn lock_from_report(report: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(report).map_err(|e| format!("pip wrote no report: {e}"))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("pip's report: {e}"))?;
    let mut lines = Vec::new();
    for item in value["install"].as_array().into_iter().flatten() {
        let name = item["metadata"]["name"].as_str().unwrap_or_default();
        let version = item["metadata"]["version"].as_str().unwrap_or_default();
        let hash = item["download_info"]["archive_info"]["hashes"]["sha256"].as_str();
        let Some(hash) = hash.filter(|_| !name.is_empty() && !version.is_empty()) else {
            return Err(format!("pip's report has no sha256 for {name} {version}"));
        };
        lines.push(format!("{}=={version} --hash=sha256:{hash}", normalize(name)));
    }
    lines.sort();
    Ok(format!("# Written by aibox pack build from pip's report: every wheel by sha256.\n{}\n", lines.join("\n")))
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("cannot run {what} (is it installed on the build host?): {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        Err(format!("{what} failed with {}:\n{}", output.status, tail.into_iter().rev().collect::<Vec<_>>().join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_rewrite_the_longest_prefix() {
        let mirrors: Vec<Mirror> = ["https://github.com/=https://nexus/gh/", "https://github.com/adoptium/=http://127.0.0.1:8081/adoptium/"].iter().map(|m| m.parse().unwrap()).collect();
        assert_eq!(rewrite("https://github.com/adoptium/temurin21/x.tar.gz", &mirrors), "http://127.0.0.1:8081/adoptium/temurin21/x.tar.gz");
        assert_eq!(rewrite("https://github.com/bazelbuild/bazel/x", &mirrors), "https://nexus/gh/bazelbuild/bazel/x");
        assert_eq!(rewrite("https://nodejs.org/dist/x", &mirrors), "https://nodejs.org/dist/x");
        assert!("github.com=nexus".parse::<Mirror>().is_err());
        let tie: Vec<Mirror> = ["https://x/=https://first/", "https://x/=https://second/"].iter().map(|m| m.parse().unwrap()).collect();
        assert_eq!(rewrite("https://x/a", &tie), "https://first/a", "the first of equal prefixes wins");
    }

    #[test]
    fn archive_paths() {
        assert_eq!(archive_kind("https://x/jdk.tar.gz"), Archive::TarGz);
        assert_eq!(archive_kind("https://x/node.tar.xz"), Archive::TarXz);
        assert_eq!(archive_kind("https://x/gradle-8.10-bin.zip"), Archive::Zip);
        assert_eq!(archive_kind("https://x/bazel-7.4.1-linux-x86_64"), Archive::Plain);
        assert_eq!(stripped(Path::new("jdk-21/bin/java"), 1).unwrap(), Some(PathBuf::from("bin/java")));
        assert_eq!(stripped(Path::new("jdk-21/"), 1).unwrap(), None);
        assert!(stripped(Path::new("../etc/passwd"), 0).is_err());
        assert!(stripped(Path::new("/etc/passwd"), 1).is_err());
    }

    /// A tar with the given (path, symlink target or file content) entries.
    fn tar_of(entries: &[(&str, Option<&str>, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, link, content) in entries {
            let mut h = tar::Header::new_gnu();
            match link {
                Some(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    b.append_link(&mut h, path, target).unwrap();
                }
                None => {
                    h.set_size(content.len() as u64);
                    h.set_mode(0o644);
                    b.append_data(&mut h, path, content.as_bytes()).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn archives_cannot_escape_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let evil = outside.path().display().to_string();
        let escaping = tar_of(&[("top/link", Some(evil.as_str()), ""), ("top/link/owned", None, "x")]);
        assert!(untar(&escaping[..], dir.path(), 1).unwrap_err().contains("points outside"));
        let climbing = tar_of(&[("top/up", Some("../.."), "")]);
        assert!(untar(&climbing[..], dir.path(), 1).is_err());
        let inside = tar_of(&[("top/lib/real", None, "x"), ("top/bin/alias", Some("../lib/real"), ""), ("top/bin/alias2", Some("alias"), "")]);
        untar(&inside[..], dir.path(), 1).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("bin/alias")).unwrap(), "x");
        let through = tar_of(&[("top/d", Some("lib"), ""), ("top/d/new", None, "y")]);
        assert!(untar(&through[..], dir.path(), 1).unwrap_err().contains("through a symlink"));
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none(), "nothing written outside");
    }

    #[test]
    fn names_normalize() {
        assert_eq!(normalize("GitPython==3.2.1"), "gitpython==3-2-1");
    }
}
