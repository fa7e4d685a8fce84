//! How aibox talks to registries: which may speak plain HTTP or unverified TLS, which CAs to
//! trust, and where credentials come from. Docker's conventions throughout.

use std::path::{Path, PathBuf};

use oci_client::client::{Certificate, CertificateEncoding};
use oci_client::secrets::RegistryAuth;

use crate::error::{Error, Result};

/// Registry connection settings.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Hosts (`host` or `host:port`) that may use plain HTTP or unverified TLS
    /// (config `insecure_registries`, env `AIBOX_INSECURE_REGISTRIES`, comma-separated).
    pub insecure_registries: Vec<String>,
    /// Per-registry CA directories: `<certs_dir>/<host[:port]>/*.crt` (Docker's
    /// `/etc/docker/certs.d`; env `AIBOX_CERTS_DIR` moves it).
    pub certs_dir: PathBuf,
    /// A PEM bundle of extra trusted CAs (`SSL_CERT_FILE`).
    pub ssl_cert_file: Option<PathBuf>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self { insecure_registries: Vec::new(), certs_dir: PathBuf::from("/etc/docker/certs.d"), ssl_cert_file: None }
    }
}

impl RegistryConfig {
    /// Settings from the environment (`AIBOX_INSECURE_REGISTRIES`, `AIBOX_CERTS_DIR`, `SSL_CERT_FILE`).
    pub fn from_env() -> Self {
        let mut config = Self::default();
        if let Ok(list) = std::env::var("AIBOX_INSECURE_REGISTRIES") {
            config.insecure_registries.extend(list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned));
        }
        if let Some(dir) = std::env::var_os("AIBOX_CERTS_DIR") {
            config.certs_dir = dir.into();
        }
        config.ssl_cert_file = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
        config
    }

    /// Whether `registry` (`host[:port]`) was explicitly listed as insecure.
    pub fn is_insecure(&self, registry: &str) -> bool {
        let host = host_of(registry);
        self.insecure_registries.iter().any(|r| r == registry || r == host)
    }

    /// Extra CA certificates to trust for `registry`.
    pub fn ca_certificates(&self, registry: &str) -> Result<Vec<Certificate>> {
        let mut pems = Vec::new();
        if let Some(file) = &self.ssl_cert_file {
            pems.push(std::fs::read(file).map_err(Error::io("cannot read SSL_CERT_FILE", file))?);
        }
        for dir in [self.certs_dir.join(registry), self.certs_dir.join(host_of(registry))] {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "crt")).collect();
            files.sort();
            for f in files {
                pems.push(std::fs::read(&f).map_err(Error::io("cannot read CA certificate", &f))?);
            }
        }
        Ok(pems.iter().flat_map(|pem| split_pem_certificates(pem)).map(|data| Certificate { encoding: CertificateEncoding::Pem, data }).collect())
    }
}

/// Where a registry's credentials came from; shown in errors, never the secret.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// What to send.
    pub auth: RegistryAuth,
    /// A description of the source, e.g. `~/.docker/config.json (user alice)`.
    pub source: String,
}

/// Look up credentials for `registry`: Docker's config (`auths`, `credHelpers`, `credsStore`,
/// honouring `DOCKER_CONFIG`), then `AIBOX_REGISTRY_USERNAME`/`AIBOX_REGISTRY_PASSWORD`.
pub fn credentials_for(registry: &str) -> Result<Credentials> {
    let config_path = docker_config_path();
    match docker_credential::get_credential(registry) {
        Ok(docker_credential::DockerCredential::UsernamePassword(user, password)) => {
            return Ok(Credentials {
                auth: RegistryAuth::Basic(user.clone(), password),
                source: format!("{} (user {user})", config_path.display()),
            });
        }
        Ok(docker_credential::DockerCredential::IdentityToken(token)) => {
            return Ok(Credentials { auth: RegistryAuth::Bearer(token), source: format!("{} (identity token)", config_path.display()) });
        }
        Err(docker_credential::CredentialRetrievalError::HelperFailure { helper, stdout, stderr }) => {
            let detail = if stderr.trim().is_empty() { stdout } else { stderr };
            return Err(Error::Missing(format!(
                "credential helper docker-credential-{helper} failed for {registry}: {}",
                detail.trim()
            )));
        }
        Err(_) => {}
    }
    match (std::env::var("AIBOX_REGISTRY_USERNAME"), std::env::var("AIBOX_REGISTRY_PASSWORD")) {
        (Ok(user), Ok(password)) => Ok(Credentials {
            auth: RegistryAuth::Basic(user.clone(), password),
            source: format!("AIBOX_REGISTRY_USERNAME (user {user})"),
        }),
        _ => Ok(Credentials {
            auth: RegistryAuth::Anonymous,
            source: format!("none (anonymous; no entry for {registry} in {} and no AIBOX_REGISTRY_USERNAME)", config_path.display()),
        }),
    }
}

fn docker_config_path() -> PathBuf {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Path::new(&dir).join("config.json"),
        None => std::env::home_dir().unwrap_or_default().join(".docker/config.json"),
    }
}

/// `host` of `host:port` (IPv6 in brackets kept whole).
pub fn host_of(registry: &str) -> &str {
    if registry.starts_with('[') {
        return registry.split_once(']').map_or(registry, |(h, _)| &registry[..=h.len()]);
    }
    registry.rsplit_once(':').map_or(registry, |(h, _)| h)
}

/// Whether the registry host is loopback (`localhost`, 127.0.0.0/8, `::1`), which may speak plain HTTP.
pub fn is_loopback(registry: &str) -> bool {
    let host = host_of(registry).trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Each `CERTIFICATE` block of a PEM bundle, as its own PEM.
fn split_pem_certificates(pem: &[u8]) -> Vec<Vec<u8>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find(BEGIN) {
        let Some(end) = rest[start..].find(END) else { break };
        let stop = start + end + END.len();
        out.push(format!("{}\n", &rest[start..stop]).into_bytes());
        rest = &rest[stop..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_hosts() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("127.3.4.5"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("harbor.internal"));
        assert!(!is_loopback("10.0.0.1:5000"));
        assert_eq!(host_of("harbor.internal:443"), "harbor.internal");
        assert_eq!(host_of("[::1]:5000"), "[::1]");
        let c = RegistryConfig { insecure_registries: vec!["reg.test".into()], ..RegistryConfig::default() };
        assert!(c.is_insecure("reg.test:5000"));
        assert!(!c.is_insecure("other:5000"));
    }

    #[test]
    fn splits_bundles() {
        let one = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let bundle = format!("# comment\n{one}{one}");
        assert_eq!(split_pem_certificates(bundle.as_bytes()).len(), 2);
    }
}
