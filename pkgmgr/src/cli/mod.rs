//! The `aibox` command line: argument definitions and dispatch. Each command group has its own
//! module; all real work is in the library.

mod key;
pub mod output;
mod pack;

use clap::{Parser, Subcommand};

use aibox_pkgmgr::Result;
pub use output::Printer;

/// aibox: signed tool packs and MCP servers for AI sandboxes.
#[derive(Debug, Parser)]
#[command(name = "aibox", version, about, propagate_version = true)]
pub struct Cli {
    /// Print one machine-readable JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but warnings and errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print more detail.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Cosign-compatible signing keys.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Author, build, publish, sign, verify and inspect packs.
    #[command(subcommand)]
    Pack(pack::PackCommand),
}

impl Cli {
    /// How to print.
    pub fn printer(&self) -> Printer {
        Printer { quiet: self.quiet, json: self.json, verbose: self.verbose }
    }

    /// Run the command.
    pub async fn run(self) -> Result<()> {
        let printer = self.printer();
        match self.command {
            Command::Key(cmd) => key::run(cmd, printer),
            Command::Pack(cmd) => pack::run(cmd, printer).await,
        }
    }
}
