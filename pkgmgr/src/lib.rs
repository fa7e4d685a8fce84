//! aibox: installs signed tool packs and MCP packs from OCI stores into a sandbox, and lets pack
//! authors build, sign and publish them.
//!
//! The library never prints or exits: functions take plain arguments and return typed results;
//! the `aibox` binary (`main.rs`, `cli/`) is a thin shell over it.

pub mod atomic;
pub mod bundle;
pub mod cache;
pub mod config;
pub mod copy;
pub mod cosign;
pub mod digest;
pub mod doctor;
pub mod error;
pub mod extract;
pub mod install;
pub mod mcp;
pub mod methods;
pub mod pack;
pub mod policy;
pub mod progress;
pub mod project;
pub mod reference;
pub mod resolve;
pub mod secrets;
pub mod store;
pub mod term;
pub mod toolpacks;
pub mod verify;

pub use digest::Digest;
pub use error::{Error, Result};
pub use reference::PackRef;
pub use store::{Store, StoreLocation};
