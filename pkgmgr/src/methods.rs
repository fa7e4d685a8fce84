//! The install methods beside `docker-layer`, run on a pack's extracted staging tree before it
//! is activated (so a failure installs nothing):
//!
//! - `script`: the pack's own script, as the current user, with only the basics and the proxy
//!   environment ([`SCRIPT_ENV`]); the policy allows it release by release.
//! - `nix`: the pack's Nix expression installed into `<tree>/profile` with `nix-env` (the same
//!   environment plus `NIX_*`), its store path rooted at the tree's final place; the policy
//!   allows it release by release too, as evaluating and building it runs the pack's code.
//!
//! Both log to `.aibox/logs/<name>-<version>.log`, which is kept.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::install::{Installer, Resolved};

/// What a pack's install script gets from the environment: the user's basics and the proxy
/// settings (a sandbox reaches the network only through its proxy); nothing else.
pub const SCRIPT_ENV: &[&str] = &["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TMPDIR", "TERM", "http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"];

/// Run the install script of a `script` pack in its staging tree with [`SCRIPT_ENV`] and
/// `PACK_ROOT` (the staging tree), `PACK_DEST` (where it will live), `PACK_NAME`, `PACK_VERSION`.
pub async fn run_script(installer: &Installer, r: &Resolved, staging: &Path) -> Result<()> {
    let name = r.pack.name.as_str();
    let script = r.pack.install.script.clone().ok_or_else(|| Error::Missing(format!("{name} is a script pack without `install.script`")))?;
    let mut command = tokio::process::Command::new("/bin/sh");
    command.arg(staging.join(&script)).env_clear();
    for var in SCRIPT_ENV {
        if let Some(value) = std::env::var_os(var) {
            command.env(var, value);
        }
    }
    command
        .env("PACK_ROOT", staging)
        .env("PACK_DEST", installer.toolpacks.pack_dir(name, &r.pack.version))
        .env("PACK_NAME", name)
        .env("PACK_VERSION", &r.pack.version);
    run_logged(installer, r, staging, command, &format!("the install script of {name} {}", r.pack.version), "").await
}

/// Install a `nix` pack's expression into a profile at `<staging>/profile` with `nix-env` (the
/// machine's Nix configuration applies: sandbox, substituters, build users).
pub async fn run_nix(installer: &Installer, r: &Resolved, staging: &Path) -> Result<()> {
    let name = r.pack.name.as_str();
    let expression = r.pack.install.expression.clone().ok_or_else(|| Error::Missing(format!("{name} is a nix pack without `install.expression`")))?;
    let nix_env = on_path("nix-env").ok_or_else(|| {
        Error::Missing(format!("{name}@{} installs with nix, and there is no `nix-env` on PATH: install Nix (Debian: nix-bin), or use a docker-layer build of the pack", r.pack.version))
    })?;
    let mut command = tokio::process::Command::new(nix_env);
    // The expression is evaluated with what aibox passes, not aibox's whole environment
    // (registry credentials, key passwords stay out): the basics, the proxy, Nix's own settings.
    command.env_clear();
    for (var, value) in std::env::vars_os() {
        let var_text = var.to_string_lossy();
        if SCRIPT_ENV.contains(&var_text.as_ref()) || var_text.starts_with("NIX_") {
            command.env(var, value);
        }
    }
    command.arg("--profile").arg(staging.join("profile")).arg("--install").arg("--file").arg(staging.join(&expression));
    run_logged(installer, r, staging, command, &format!("{name} {} with nix", r.pack.version), "(nix-env) ").await
}

/// Run `command` in `staging`, output to the pack's log; a failure names the log.
async fn run_logged(installer: &Installer, r: &Resolved, staging: &Path, mut command: tokio::process::Command, label: &str, what: &str) -> Result<()> {
    let logs = installer.toolpacks.root().join(".aibox/logs");
    std::fs::create_dir_all(&logs).map_err(Error::io("cannot create", &logs))?;
    let log_path = logs.join(format!("{}-{}.log", r.pack.name, r.pack.version));
    let log = std::fs::File::create(&log_path).map_err(Error::io("cannot create", &log_path))?;
    let err_log = log.try_clone().map_err(Error::io("cannot write", &log_path))?;
    // Killed when the install is abandoned (another pack failed): nothing keeps writing into a
    // staging tree that is being removed.
    command.current_dir(staging).stdin(std::process::Stdio::null()).stdout(log).stderr(err_log).kill_on_drop(true);
    let id = installer.reporter.start("Running", label, 0);
    let status = command.status().await;
    installer.reporter.finish(id);
    let status = status.map_err(Error::io("cannot run the install method in", staging))?;
    if !status.success() {
        let how = status.code().map_or_else(|| "was killed".to_owned(), |c| format!("exited with {c}"));
        return Err(Error::ScriptFailed { pack: format!("{}@{}", r.pack.name, r.pack.version), how: format!("{what}{how}"), log: log_path });
    }
    Ok(())
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(program)).find(|p| p.is_file()))
}

/// Keep a nix pack's profile alive in the Nix store once its tree is in place: the profile was
/// made in staging, so its garbage-collector root is registered again at the final path.
pub async fn root_nix_profile(dir: &Path) -> Result<()> {
    let profile = dir.join("profile");
    let target = std::fs::canonicalize(&profile).map_err(Error::io("cannot resolve the nix profile", &profile))?;
    let status = tokio::process::Command::new("nix-store")
        .arg("--add-root")
        .arg(dir.join(".nix-gcroot"))
        .arg("--indirect")
        .arg("--realise")
        .arg(&target)
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .map_err(Error::io("cannot run nix-store for", &profile))?;
    if !status.success() {
        return Err(Error::Missing(format!(
            "nix-store could not root {} (the profile of {}): run `nix-store --add-root {}/.nix-gcroot --indirect --realise {}`",
            target.display(),
            dir.display(),
            dir.display(),
            target.display()
        )));
    }
    Ok(())
}
