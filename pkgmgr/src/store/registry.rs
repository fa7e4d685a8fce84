//! `docker://HOST/NAMESPACE`: an OCI distribution registry (Harbor, distribution, ...), through
//! oci-client.
//!
//! Like Docker, a loopback registry (127.0.0.0/8, ::1, localhost) may speak plain HTTP, and so may
//! a host listed in `insecure_registries`; any other host must speak verified TLS. A listed
//! insecure host may also present a certificate we cannot verify.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::{Client, Reference};
use reqwest::header::HeaderValue;

use super::registry_config::{Credentials, credentials_for, is_loopback};
use super::{Blob, BlobData, BlobReader, RawManifest, RegistryConfig, Store, StoreLocation};
use crate::digest::Digest;
use crate::error::{Error, Result};
use aibox_schema::media_types as mt;

const ACCEPTED_MANIFESTS: &[&str] = &[mt::OCI_MANIFEST, mt::OCI_INDEX, mt::DOCKER_MANIFEST, mt::DOCKER_MANIFEST_LIST];
/// Manifests larger than this are refused (the distribution registry's own limit is 4 MiB).
const MAX_MANIFEST: usize = 4 << 20;

/// A registry namespace.
pub struct Registry {
    location: StoreLocation,
    registry: String,
    client: Client,
    credentials: Credentials,
}

/// How to speak to a registry, decided once per process.
enum Transport {
    Https,
    HttpsUnverified,
    Http,
}

impl Registry {
    /// Connect to the registry of `location` (a [`StoreLocation::Registry`]).
    pub async fn connect(location: StoreLocation, config: &RegistryConfig) -> Result<Self> {
        let StoreLocation::Registry { registry, .. } = &location else {
            unreachable!("Registry::connect is only called for docker:// stores")
        };
        let registry = registry.clone();
        let credentials = credentials_for(&registry)?;
        let certificates = config.ca_certificates(&registry)?;
        let transport = if is_loopback(&registry) || config.is_insecure(&registry) {
            probe(&registry, &certificates, config.is_insecure(&registry)).await?
        } else {
            Transport::Https
        };
        let client_config = ClientConfig {
            protocol: match transport {
                Transport::Http => ClientProtocol::Http,
                Transport::Https | Transport::HttpsUnverified => ClientProtocol::Https,
            },
            accept_invalid_certificates: matches!(transport, Transport::HttpsUnverified),
            extra_root_certificates: certificates,
            // One streamed PUT per blob: chunked uploads would send one PATCH per read buffer.
            use_monolithic_push: true,
            connect_timeout: Some(Duration::from_secs(15)),
            read_timeout: Some(Duration::from_secs(120)),
            user_agent: concat!("aibox/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        Ok(Self { location, registry, client: Client::new(client_config), credentials })
    }

    fn reference(&self, name: &str, reference: &str) -> Reference {
        let repository = self.location.repository(name);
        match reference.parse::<Digest>() {
            Ok(d) => Reference::with_digest(self.registry.clone(), repository, d.to_string()),
            Err(_) => Reference::with_tag(self.registry.clone(), repository, reference.to_owned()),
        }
    }

    async fn authenticate(&self, reference: &Reference, push: bool) {
        let op = if push { oci_client::RegistryOperation::Push } else { oci_client::RegistryOperation::Pull };
        // Failures surface on the request itself, with the status the registry gave.
        let _ = self.client.auth(reference, &self.credentials.auth, op).await;
    }

    fn error(&self, operation: &str, name: &str, e: OciDistributionError) -> Error {
        let repository = self.location.repository(name);
        let denied = |status| Error::RegistryDenied {
            registry: self.registry.clone(),
            repository: repository.clone(),
            status,
            credentials: self.credentials.source.clone(),
        };
        match e {
            OciDistributionError::UnauthorizedError { .. } | OciDistributionError::AuthenticationFailure(_) => denied(401),
            OciDistributionError::ServerError { code: code @ (401 | 403), .. } => denied(code),
            OciDistributionError::RegistryError { ref envelope, .. }
                if envelope.errors.iter().any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)) =>
            {
                denied(if envelope.errors.iter().any(|e| matches!(e.code, OciErrorCode::Denied)) { 403 } else { 401 })
            }
            OciDistributionError::RequestError(ref r) if r.is_connect() || r.is_timeout() => {
                let reason = error_chain(r);
                if reason.contains("certificate") {
                    Error::UntrustedCertificate { registry: self.registry.clone(), reason }
                } else {
                    Error::RegistryUnreachable { registry: self.registry.clone(), reason }
                }
            }
            other => Error::Registry {
                registry: self.registry.clone(),
                operation: format!("{operation} ({repository})"),
                reason: error_chain(&other),
            },
        }
    }
}

fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) | OciDistributionError::ServerError { code: 404, .. } => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(e.code, OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound | OciErrorCode::BlobUnknown)
        }),
        _ => false,
    }
}

#[async_trait]
impl Store for Registry {
    fn location(&self) -> &StoreLocation {
        &self.location
    }

    async fn list_packs(&self) -> Result<Vec<String>> {
        // The catalog API (Harbor restricts it to admins; distribution serves it).
        let reference = self.reference("_catalog", "latest");
        let StoreLocation::Registry { namespace, .. } = &self.location else { unreachable!() };
        let prefix = if namespace.is_empty() { String::new() } else { format!("{namespace}/") };
        let mut packs = Vec::new();
        let mut last: Option<String> = None;
        loop {
            let page = self.client.catalog(&reference, &self.credentials.auth, Some(1000), last.as_deref()).await.map_err(|e| self.error("listing repositories", "", e))?;
            let done = page.repositories.len() < 1000;
            last = page.repositories.last().cloned();
            packs.extend(page.repositories.into_iter().filter_map(|r| r.strip_prefix(&prefix).filter(|n| !n.contains('/')).map(str::to_owned)));
            if done || last.is_none() {
                break;
            }
        }
        packs.sort();
        Ok(packs)
    }

    async fn list_tags(&self, name: &str) -> Result<Vec<String>> {
        let reference = self.reference(name, "latest");
        let mut tags = Vec::new();
        let mut last: Option<String> = None;
        loop {
            match self.client.list_tags(&reference, &self.credentials.auth, Some(1000), last.as_deref()).await {
                Ok(page) => {
                    let done = page.tags.len() < 1000;
                    last = page.tags.last().cloned();
                    tags.extend(page.tags);
                    if done || last.is_none() {
                        break;
                    }
                }
                Err(e) if is_not_found(&e) => break,
                Err(e) => return Err(self.error("listing tags", name, e)),
            }
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    async fn fetch_manifest(&self, name: &str, reference: &str) -> Result<Option<RawManifest>> {
        let r = self.reference(name, reference);
        match self.client.pull_manifest_raw(&r, &self.credentials.auth, ACCEPTED_MANIFESTS).await {
            Ok((bytes, _)) if bytes.len() > MAX_MANIFEST => Err(Error::Corrupt {
                store: self.location.to_string(),
                reason: format!("manifest {name}:{reference} is larger than {MAX_MANIFEST} bytes"),
            }),
            Ok((bytes, _)) => {
                let manifest = RawManifest::new(bytes);
                super::check_manifest_digest(&self.location, reference, &manifest)?;
                Ok(Some(manifest))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(OciDistributionError::DigestError(e)) => Err(Error::Corrupt {
                store: self.location.to_string(),
                reason: format!("manifest {name}@{reference} does not match its digest: {e}"),
            }),
            Err(e) => Err(self.error("fetching manifest", name, e)),
        }
    }

    async fn has_blob(&self, name: &str, digest: &Digest) -> Result<bool> {
        let r = self.reference(name, digest.as_str());
        self.authenticate(&r, false).await;
        match self.client.blob_exists(&r, digest.as_str()).await {
            Ok(found) => Ok(found),
            Err(e) => Err(self.error("checking blob", name, e)),
        }
    }

    async fn open_blob(&self, name: &str, digest: &Digest) -> Result<BlobReader> {
        let r = self.reference(name, digest.as_str());
        self.authenticate(&r, false).await;
        let stream = match self.client.pull_blob_stream(&r, digest.as_str()).await {
            Ok(s) => s,
            Err(e) if is_not_found(&e) => {
                return Err(Error::NotFound { what: format!("blob {digest} of {name}"), store: self.location.to_string() });
            }
            Err(e) => return Err(self.error("fetching blob", name, e)),
        };
        let bytes = stream.stream.map_err(|e| std::io::Error::other(error_chain(&e)));
        Ok(Box::pin(tokio_util::io::StreamReader::new(bytes)))
    }

    async fn push_blob(&self, name: &str, blob: &Blob) -> Result<()> {
        match &blob.data {
            BlobData::Bytes(b) => {
                let r = self.reference(name, blob.digest.as_str());
                self.authenticate(&r, true).await;
                self.client.push_blob(&r, b.clone(), blob.digest.as_str()).await.map(drop).map_err(|e| self.error("pushing blob", name, e))
            }
            BlobData::File(path) => {
                let file = tokio::fs::File::open(path).await.map_err(Error::io("cannot read", path))?;
                self.push_blob_stream(name, &blob.digest, blob.size, Box::pin(file)).await
            }
        }
    }

    async fn push_blob_stream(&self, name: &str, digest: &Digest, size: u64, reader: BlobReader) -> Result<()> {
        let r = self.reference(name, digest.as_str());
        self.authenticate(&r, true).await;
        let stream = tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024).map_err(OciDistributionError::IoError);
        self.client.push_blob_stream(&r, stream, digest.as_str(), Some(size)).await.map(drop).map_err(|e| self.error("pushing blob", name, e))
    }

    async fn mount_blob(&self, name: &str, digest: &Digest, from: &StoreLocation, from_name: &str) -> Result<bool> {
        let StoreLocation::Registry { registry, .. } = from else { return Ok(false) };
        if *registry != self.registry {
            return Ok(false);
        }
        let target = self.reference(name, digest.as_str());
        let source = Reference::with_digest(self.registry.clone(), from.repository(from_name), digest.to_string());
        self.authenticate(&target, true).await;
        // 201 is a mount; anything else (202: the registry opened an upload instead) means send it.
        Ok(self.client.mount_blob(&target, &source, digest.as_str()).await.is_ok())
    }

    async fn push_manifest(&self, name: &str, tag: Option<&str>, manifest: &RawManifest) -> Result<()> {
        let content_type = HeaderValue::from_str(&manifest.media_type).map_err(|_| Error::Corrupt {
            store: self.location.to_string(),
            reason: format!("invalid manifest media type {:?}", manifest.media_type),
        })?;
        let r = self.reference(name, tag.unwrap_or(manifest.digest.as_str()));
        self.authenticate(&r, true).await;
        self.client
            .push_manifest_raw(&r, manifest.bytes.clone(), content_type)
            .await
            .map(drop)
            .map_err(|e| self.error("pushing manifest", name, e))
    }
}

/// Decide how to speak to a loopback or insecure registry: verified TLS when it answers that
/// way, else plain HTTP, else (only when listed insecure) unverified TLS.
async fn probe(registry: &str, certificates: &[oci_client::client::Certificate], insecure: bool) -> Result<Transport> {
    let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).timeout(Duration::from_secs(20));
    let roots: Vec<reqwest::Certificate> = certificates.iter().filter_map(|c| reqwest::Certificate::from_pem(&c.data).ok()).collect();
    if !roots.is_empty() {
        builder = builder.tls_certs_merge(roots);
    }
    let client = builder.build().map_err(|e| Error::RegistryUnreachable { registry: registry.to_owned(), reason: error_chain(&e) })?;
    let https_error = match client.get(format!("https://{registry}/v2/")).send().await {
        Ok(_) => return Ok(Transport::Https),
        Err(e) => error_chain(&e),
    };
    if let Ok(response) = client.get(format!("http://{registry}/v2/")).send().await {
        let tls_only = response.status() == reqwest::StatusCode::BAD_REQUEST
            && response.text().await.is_ok_and(|t| t.contains("HTTPS server"));
        if !tls_only {
            return Ok(Transport::Http);
        }
        if insecure {
            return Ok(Transport::HttpsUnverified);
        }
        return Err(Error::UntrustedCertificate { registry: registry.to_owned(), reason: https_error });
    }
    Err(Error::RegistryUnreachable { registry: registry.to_owned(), reason: https_error })
}

/// An error and its sources, joined, for messages.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
