//! `aibox key`: generate Cosign key pairs.

use std::path::PathBuf;

use clap::Subcommand;

use super::Printer;
use aibox_pkgmgr::{Result, cosign};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate an ECDSA P-256 key pair in Cosign's format: PREFIX.key (encrypted with
    /// COSIGN_PASSWORD, or a password asked on the terminal) and PREFIX.pub.
    Generate {
        /// Path prefix of the two files.
        #[arg(long, default_value = "cosign")]
        output_key_prefix: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(cmd: KeyCommand, printer: Printer) -> Result<()> {
    match cmd {
        KeyCommand::Generate { output_key_prefix, force } => {
            let password = cosign::password_from_env_or_prompt(true)?;
            let keys = cosign::generate(&output_key_prefix, &password, force)?;
            printer.status("Generated", format!("{} (private, 0600) and {}", keys.private_key.display(), keys.public_key.display()));
            printer.detail(format!("fingerprint {}", keys.fingerprint));
            printer.document(&keys);
            Ok(())
        }
    }
}
