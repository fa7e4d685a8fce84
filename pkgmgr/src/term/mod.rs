//! What the binaries (`aibox`, `aibox-image`) draw on the terminal: cargo-style status lines
//! and errors on stderr, `--json` documents on stdout, progress bars for the library's progress
//! events. Only binaries use this module; the rest of the library never prints.

pub mod output;
pub mod progress;

pub use output::{Printer, human_bytes, short};
