//! `aibox config`: read and change the configuration files.

use clap::Subcommand;

use super::Printer;
use aibox_pkgmgr::config::{self, KEYS, Settings};
use aibox_pkgmgr::{Error, Result};

/// `aibox config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// The value in force of KEY (or of every key) and where it came from.
    Get {
        /// A key of config.yaml (docs/configuration.md).
        key: Option<String>,
    },
    /// Set KEY to VALUE in the user's configuration file (with --system, the system's).
    Set {
        /// A key of config.yaml.
        key: String,
        /// Its value (lists comma-separated).
        value: String,
        /// Write /etc/aibox/config.yaml (AIBOX_SYSTEM_CONFIG) instead.
        #[arg(long)]
        system: bool,
    },
    /// Remove KEY from the user's configuration file (with --system, the system's).
    Unset {
        /// A key of config.yaml.
        key: String,
        /// Edit /etc/aibox/config.yaml (AIBOX_SYSTEM_CONFIG) instead.
        #[arg(long)]
        system: bool,
    },
}

pub fn run(cmd: ConfigCommand, global: &Settings, printer: Printer) -> Result<()> {
    let target = |system: bool| {
        if system {
            Ok(config::system_config_path())
        } else {
            config::user_config_path().ok_or_else(|| Error::Missing("no home directory for the user's configuration: set AIBOX_CONFIG".into()))
        }
    };
    match cmd {
        ConfigCommand::Get { key } => {
            let names: Vec<&str> = match &key {
                Some(k) => vec![config::key(k)?.name],
                None => KEYS.iter().map(|k| k.name).collect(),
            };
            let mut doc = serde_json::Map::new();
            for name in names {
                let value = global.value(name)?;
                let source = global.sources.get(name).cloned().unwrap_or_else(|| "default".into());
                if printer.json {
                    // the document below
                } else if key.is_some() {
                    printer.data(&format!("{value}\n"));
                } else {
                    printer.data(&format!("{name:<20} {value:<45} ({source})\n"));
                }
                doc.insert(name.to_owned(), serde_json::json!({"value": value, "source": source}));
            }
            printer.document(&doc);
            Ok(())
        }
        ConfigCommand::Set { key, value, system } => {
            let path = target(system)?;
            config::set_key(&path, &key, Some(&value))?;
            printer.status("Set", format!("{key} = {value} in {}", path.display()));
            printer.document(&serde_json::json!({"key": key, "value": value, "file": path}));
            Ok(())
        }
        ConfigCommand::Unset { key, system } => {
            let path = target(system)?;
            config::set_key(&path, &key, None)?;
            printer.status("Unset", format!("{key} in {}", path.display()));
            printer.document(&serde_json::json!({"key": key, "file": path}));
            Ok(())
        }
    }
}
