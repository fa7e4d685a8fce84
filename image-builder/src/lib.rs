//! aibox-image: bakes the sandbox images developers pull (`aibox-base:24.04`,
//! `aibox-java:21-24.04`, ...) without a container daemon, as apko, ko and crane do: it writes
//! OCI images itself, reuses each pack's published layer blob unchanged (a variant costs a
//! manifest, a config and a small state layer), and the same inputs give the same digests.
//!
//! The library never prints or exits; `main.rs` is the `aibox-image` command over [`bake`].

pub mod accounts;
pub mod aibox_layer;
pub mod bake;
pub mod base_files;
pub mod base_image;
pub mod config;
pub mod error;
pub mod image;
pub mod layer;
pub mod packs;
pub mod rootfs;
pub mod sbom;
pub mod tree;

pub use bake::{BakeDate, BakeReport, Options, bake};
pub use config::ImagesFile;
pub use error::{Error, Result};
