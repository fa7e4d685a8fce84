//! Human output on stderr (cargo-style status lines), machine output on stdout (`--json`).
//!
//! Everything printed goes through [`redact`]: a location the user wrote with credentials in it
//! (`docker://robot:TOKEN@harbor/...`, a mirror `https://user:TOKEN@nexus/...`) shows as
//! `docker://***@harbor/...` in every message, error and document. Only [`Printer::verbatim`]
//! output (shell code for `eval`, made of pack content) is printed as it is.

use std::io::Write;

use anstyle::{AnsiColor, Style};

use crate::secrets::redact;

const STATUS: Style = AnsiColor::Green.on_default().bold();
const WARNING: Style = AnsiColor::Yellow.on_default().bold();
const ERROR: Style = AnsiColor::Red.on_default().bold();
const HELP: Style = AnsiColor::Cyan.on_default().bold();

/// Where and how much to print.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// `-q`: nothing on stderr but errors.
    pub quiet: bool,
    /// `--json`: one document on stdout.
    pub json: bool,
    /// `-v`: more detail.
    pub verbose: bool,
}

#[allow(clippy::unused_self)] // methods share one shape whether or not they read the flags
impl Printer {
    /// A cargo-style status line: right-aligned green verb, then the message.
    pub fn status(self, verb: &str, message: impl std::fmt::Display) {
        if !self.quiet {
            let message = message.to_string();
            let mut err = anstream::stderr();
            let _ = writeln!(err, "{STATUS}{verb:>12}{STATUS:#} {}", redact(&message));
        }
    }

    /// A detail line shown with `-v`.
    pub fn detail(self, message: impl std::fmt::Display) {
        if self.verbose && !self.quiet {
            let message = message.to_string();
            let _ = writeln!(anstream::stderr(), "{:>12} {}", "", redact(&message));
        }
    }

    /// A warning (shown even with `-q`: warnings matter).
    pub fn warn(self, message: impl std::fmt::Display) {
        let message = message.to_string();
        let _ = writeln!(anstream::stderr(), "{WARNING}warning{WARNING:#}: {}", redact(&message));
    }

    /// An error and what to do about it.
    pub fn error(self, message: impl std::fmt::Display, hint: Option<&str>) {
        let message = message.to_string();
        let mut err = anstream::stderr();
        let _ = writeln!(err, "{ERROR}error{ERROR:#}: {}", redact(&message));
        if let Some(hint) = hint {
            let _ = writeln!(err, "  {HELP}help{HELP:#}: {}", redact(hint));
        }
    }

    /// The `--json` document (only in JSON mode).
    pub fn document(self, value: &impl serde::Serialize) {
        if self.json {
            match serde_json::to_value(value) {
                Ok(mut value) => {
                    redact_strings(&mut value);
                    self.document_verbatim(&value);
                }
                Err(e) => self.error(format!("cannot write the JSON document: {e}"), None),
            }
        }
    }

    /// The `--json` document, printed as it is (only for pack content, see [`Printer::verbatim`]).
    pub fn document_verbatim(self, value: &impl serde::Serialize) {
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = serde_json::to_writer_pretty(&mut out, value);
            let _ = writeln!(out);
        }
    }

    /// Plain data on stdout in human mode (e.g. `pack schema`).
    pub fn data(self, text: &str) {
        self.verbatim(&redact(text));
    }

    /// Data on stdout exactly as given: shell code a shell evaluates (`aibox env`), made of what
    /// packs declare, which redacting could only break.
    pub fn verbatim(self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
    }
}

/// Redact every string of a JSON document (see [`redact`]).
fn redact_strings(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let std::borrow::Cow::Owned(r) = redact(s) {
                *s = r;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_strings),
        serde_json::Value::Object(map) => map.values_mut().for_each(redact_strings),
        _ => {}
    }
}

/// `sha256:0123456789ab` (12 hex digits), enough to tell apart.
pub fn short(digest: &str) -> &str {
    &digest[..digest.len().min("sha256:".len() + 12)]
}

/// Bytes for people.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}
