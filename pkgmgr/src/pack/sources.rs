//! Pinned sources of a pack, placed into the staging tree at build time.
//!
//! - `url` + `sha256`: a file (`file://`, relative to the pack folder, or absolute), checked
//!   against its pin and copied to `dest`.
//! - `npm: <package>@<exact version>`: installed with the build host's `npm` into `dest`
//!   (`--omit=dev --ignore-scripts`). A `package-lock.json` beside `pack.yaml` pins the whole
//!   tree (`npm ci`, integrity hashes checked by npm); without one, npm resolves and the lock it
//!   writes is kept in the pack, so the build can be repeated from it.
//! - `pypi: <name>==<exact version>`: installed with the build host's `python3 -m pip` into
//!   `dest` (wheels only, no bytecode). A `requirements.lock` beside `pack.yaml` (pip's hash
//!   format) pins the whole tree (`--require-hashes`); without one, pip resolves and a
//!   `requirements.lock` with the sha256 of every wheel is written into the pack.
//!
//! Registries and mirrors come from the tools' own settings (`npm_config_registry`,
//! `PIP_INDEX_URL`, their config files), so a build inside a site uses the site's mirror.

use std::path::{Path, PathBuf};
use std::process::Command;

use aibox_schema::Source;
use aibox_schema::manifest::{split_npm_spec, split_pypi_spec};

use crate::digest::digest_file;

/// Lockfiles a pack folder may carry to pin npm and PyPI trees.
pub const NPM_LOCK: &str = "package-lock.json";
/// See [`NPM_LOCK`].
pub const PIP_LOCK: &str = "requirements.lock";

/// Place every source of a pack into `staging`. `work` is scratch space of the build.
pub fn place_all(pack_dir: &Path, sources: &[Source], staging: &Path, work: &Path) -> Result<(), String> {
    for source in sources {
        let dest = staging.join(source.dest.as_deref().unwrap_or("."));
        std::fs::create_dir_all(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        if let Some(url) = &source.url {
            place_file(pack_dir, url, source.sha256.as_deref().unwrap_or_default(), &dest)?;
        } else if let Some(spec) = &source.npm {
            install_npm(pack_dir, spec, &dest)?;
        } else if let Some(spec) = &source.pypi {
            install_pypi(pack_dir, spec, &dest, work)?;
        } else if let Some(deb) = &source.deb {
            return Err(format!("deb source `{deb}`: Debian package sources are not supported by this build of aibox yet"));
        }
    }
    Ok(())
}

fn place_file(pack_dir: &Path, url: &str, expected: &str, dest_dir: &Path) -> Result<(), String> {
    let Some(path) = url.strip_prefix("file://") else {
        return Err(format!("{url}: only file:// URL sources are supported by this build of aibox yet"));
    };
    let path = if Path::new(path).is_absolute() { PathBuf::from(path) } else { pack_dir.join(path) };
    let (digest, _) = digest_file(&path).map_err(|e| format!("source {}: {e}", path.display()))?;
    if digest.hex() != expected {
        return Err(format!("source {url} has sha256 {}, but pack.yaml pins {expected}", digest.hex()));
    }
    let file_name = path.file_name().ok_or_else(|| format!("source {url} names no file"))?;
    let dest = dest_dir.join(file_name);
    std::fs::copy(&path, &dest).map_err(|e| format!("copying {} to {}: {e}", path.display(), dest.display()))?;
    Ok(())
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
    fn names_normalize() {
        assert_eq!(normalize("GitPython==3.2.1"), "gitpython==3-2-1");
    }
}
