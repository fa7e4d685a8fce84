//! The SBOM of an image: an SPDX 2.3 JSON document listing the image, its base and every pack
//! in it by name, version and digest. It is attached the way `cosign attach sbom` does (a
//! manifest tagged `sha256-<image digest hex>.sbom` whose layer is the document) and, through
//! its `subject`, is an OCI 1.1 referrer of the image on registries that index those.


use aibox_pkgmgr::digest::Digest;
use aibox_pkgmgr::store::RawManifest;
use aibox_schema::media_types::OCI_MANIFEST;
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use serde::Serialize;
use serde_json::json;

/// The media type `cosign attach sbom --type spdx` gives an SPDX JSON layer (cosign's
/// `pkg/types.SPDXJSONMediaType`), so `cosign download sbom` finds it.
pub const SPDX_MEDIA_TYPE: &str = "spdx+json";
/// `artifactType` of the attachment manifest.
pub const SPDX_ARTIFACT: &str = "application/spdx+json";
/// The OCI empty config.
pub const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";

/// Where a component is.
#[derive(Debug, Clone, Serialize)]
pub enum Origin {
    /// A repository of a registry (`harbor.internal/toolpacks/java`).
    Registry(String),
    /// An OCI layout or archive.
    Store,
    /// A file (a rootfs tarball, the aibox binary).
    File,
}

impl Origin {
    /// Where pack or image `name` of store `location` is.
    pub fn of(location: &aibox_pkgmgr::StoreLocation, name: &str) -> Self {
        match location {
            aibox_pkgmgr::StoreLocation::Registry { .. } => Origin::Registry(location.docker_reference(name)),
            _ => Origin::Store,
        }
    }
}

/// Something an image contains.
#[derive(Debug, Clone, Serialize)]
pub struct Component {
    /// SPDX id suffix (`base`, `pack-java`).
    pub id: String,
    /// Name.
    pub name: String,
    /// Version (a tag for images).
    pub version: String,
    /// The digest that pins it (manifest digest, or the layer digest for a rootfs).
    pub digest: Digest,
    /// Where it is, for its purl.
    pub origin: Origin,
    /// `CONTAINER`, `APPLICATION`, `OPERATING-SYSTEM`.
    pub purpose: &'static str,
    /// Who made it (a pack's maintainer).
    pub supplier: Option<String>,
}

/// The SPDX document for `image` (name, tag, manifest digest, repository) containing `parts`.
pub fn document(image: &Component, parts: &[Component], created: &str) -> Vec<u8> {
    let package = |c: &Component| {
        let mut p = json!({
            "SPDXID": format!("SPDXRef-{}", c.id),
            "name": c.name,
            "versionInfo": c.version,
            "downloadLocation": "NOASSERTION",
            "primaryPackagePurpose": c.purpose,
            "filesAnalyzed": false,
            "checksums": [{"algorithm": "SHA256", "checksumValue": c.digest.hex()}],
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl(c),
            }],
        });
        if let Some(s) = &c.supplier {
            p["supplier"] = json!(format!("Organization: {s}"));
        }
        p
    };
    let mut relationships = vec![json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": format!("SPDXRef-{}", image.id)})];
    for part in parts {
        let kind = if part.id == "base" { "DESCENDANT_OF" } else { "CONTAINS" };
        relationships.push(json!({"spdxElementId": format!("SPDXRef-{}", image.id), "relationshipType": kind, "relatedSpdxElement": format!("SPDXRef-{}", part.id)}));
    }
    let doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}:{}", image.name, image.version),
        "documentNamespace": format!("https://aibox.dev/spdx/{}/{}", image.name, image.digest.hex()),
        "creationInfo": {"created": created, "creators": [format!("Tool: aibox-image-{}", env!("CARGO_PKG_VERSION"))]},
        "packages": std::iter::once(image).chain(parts).map(package).collect::<Vec<_>>(),
        "relationships": relationships,
    });
    serde_json::to_vec_pretty(&doc).expect("SBOM serializes")
}

/// `pkg:oci/NAME@sha256%3A...?repository_url=HOST/NS/NAME` for what lives in a registry,
/// `pkg:generic/NAME@VERSION?checksum=sha256:...` for files.
fn purl(c: &Component) -> String {
    let digest = c.digest.as_str().replace(':', "%3A");
    match &c.origin {
        Origin::Registry(repo) => format!("pkg:oci/{}@{digest}?repository_url={repo}", c.name),
        Origin::Store => format!("pkg:oci/{}@{digest}", c.name),
        Origin::File => format!("pkg:generic/{}@{}?checksum={}", c.name, c.version, c.digest),
    }
}

/// The attachment manifest for `sbom` on the image `subject` (its manifest).
pub fn attachment(sbom_digest: &Digest, sbom_size: u64, subject: &RawManifest) -> RawManifest {
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_owned()),
        config: OciDescriptor { media_type: EMPTY_CONFIG.to_owned(), digest: Digest::of(b"{}").to_string(), size: 2, ..OciDescriptor::default() },
        layers: vec![OciDescriptor { media_type: SPDX_MEDIA_TYPE.to_owned(), digest: sbom_digest.to_string(), size: i64::try_from(sbom_size).expect("fits"), ..OciDescriptor::default() }],
        subject: Some(OciDescriptor { media_type: subject.media_type.clone(), digest: subject.digest.to_string(), size: i64::try_from(subject.bytes.len()).expect("fits"), ..OciDescriptor::default() }),
        artifact_type: Some(SPDX_ARTIFACT.to_owned()),
        annotations: None,
    };
    RawManifest::new(serde_json::to_vec(&manifest).expect("manifest serializes"))
}

/// The tag the SBOM attachment of `image` lives under (cosign's scheme).
pub fn tag(image: &Digest) -> String {
    format!("sha256-{}.sbom", image.hex())
}
