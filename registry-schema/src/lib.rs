//! The aibox pack format: the typed `pack.yaml`, the OCI media types a pack is published with,
//! and the JSON Schema generated from those types.
//!
//! YAML is read with [`serde_saphyr`] (maintained, panic-free, with budgets against alias bombs
//! and errors that carry line and column); `serde_yaml` is deprecated and is not used.

pub mod manifest;
pub mod media_types;
pub mod names;
pub mod schema;
pub mod server_json;

pub use manifest::{
    EnvSegment, env_segments,
    Filesystem, Install, InstallMethod, ManifestError, McpPermissions, Network, PackKind,
    PackManifest, Resources, Security, Source, Transport,
};
pub use names::{NameError, PackName, Requirement};
