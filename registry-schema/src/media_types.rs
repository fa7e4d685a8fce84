//! Media types and annotation keys of the aibox pack format (DESIGN.md, "Pack format").

/// `artifactType` of a tool pack manifest.
pub const TOOLPACK_ARTIFACT: &str = "application/vnd.aibox.toolpack.v1";
/// `artifactType` of an MCP pack manifest.
pub const MCPPACK_ARTIFACT: &str = "application/vnd.aibox.mcppack.v1";
/// Config media type of a tool pack: the pack manifest as canonical JSON.
pub const TOOLPACK_CONFIG: &str = "application/vnd.aibox.toolpack.config.v1+json";
/// Config media type of an MCP pack: the pack manifest as canonical JSON.
pub const MCPPACK_CONFIG: &str = "application/vnd.aibox.mcppack.config.v1+json";

/// The layer media type aibox writes.
pub const LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// A gzip layer, read too.
pub const LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// An uncompressed layer, read too.
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config (used by Cosign signature manifests).
pub const OCI_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker schema 2 manifest (older Cosign versions write signatures with it).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Cosign's simple-signing payload layer.
pub const COSIGN_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Annotation carrying the base64 signature on a Cosign payload layer.
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// `artifactType` of a Cosign signature stored as an OCI 1.1 referrer.
pub const COSIGN_SIGNATURE_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

/// Standard annotation keys written on pack manifests.
pub mod annotations {
    /// Human title (the pack name).
    pub const TITLE: &str = "org.opencontainers.image.title";
    /// Pack version.
    pub const VERSION: &str = "org.opencontainers.image.version";
    /// Pack description.
    pub const DESCRIPTION: &str = "org.opencontainers.image.description";
    /// Where the pack source lives.
    pub const SOURCE: &str = "org.opencontainers.image.source";
    /// Name of a reference in an OCI image layout's `index.json`.
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
    /// Creation time (only written when `SOURCE_DATE_EPOCH` pins it).
    pub const CREATED: &str = "org.opencontainers.image.created";
}
