//! The `aibox` binary: parse arguments, run, map the outcome to an exit code
//! (0 ok, 1 refused or failed, 2 usage).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    aibox_pkgmgr::store::registry_config::ensure_trust_store();
    // clap exits 2 on usage errors by itself.
    let cli = cli::Cli::parse();
    let printer = cli.printer();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            printer.error(format!("cannot start the async runtime: {e}"), None);
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let hint = e.hint();
            printer.error(&e, hint.as_deref());
            // An incomplete result already printed its document (with the problems in it).
            if !matches!(e, aibox_pkgmgr::Error::Incomplete(_)) {
                printer.document(&serde_json::json!({"error": {"message": e.to_string(), "hint": hint}}));
            }
            ExitCode::from(1)
        }
    }
}
