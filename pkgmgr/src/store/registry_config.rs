//! How aibox talks to registries: which may speak plain HTTP or unverified TLS, which CAs to
//! trust, and where credentials come from. Docker's conventions throughout.

use std::path::{Path, PathBuf};

use oci_client::client::{Certificate, CertificateEncoding};
use oci_client::secrets::RegistryAuth;

use super::retry::RetryPolicy;
use std::time::Duration;

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
    /// How often and how long to try a failing request again (config `registry_retries`).
    pub retry: RetryPolicy,
    /// Longest wait for a connection (config `registry_connect_timeout`).
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of an answer (config `registry_read_timeout`): a
    /// stalled download is resumed after it.
    pub read_timeout: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            certs_dir: PathBuf::from("/etc/docker/certs.d"),
            ssl_cert_file: None,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(DEFAULT_CONNECT_TIMEOUT),
            read_timeout: Duration::from_secs(DEFAULT_READ_TIMEOUT),
        }
    }
}

/// Default of `registry_connect_timeout`, seconds.
pub const DEFAULT_CONNECT_TIMEOUT: u64 = 15;
/// Default of `registry_read_timeout`, seconds.
pub const DEFAULT_READ_TIMEOUT: u64 = 60;

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

/// Let TLS clients start on a system without CA certificates (minimal images such as
/// `ubuntu:24.04` or a debootstrap `minbase` have none): rustls then refuses to build a client
/// at all, and oci-client builds one internally whatever its configuration says, so aibox
/// could not even reach a plain-HTTP registry or one whose CA is in `certs.d`. When no CA
/// certificate loads and `SSL_CERT_FILE` is unset, point `SSL_CERT_FILE` at an anchor whose
/// private key was destroyed when it was made: trusting it trusts nothing.
///
/// Binaries call this first thing in `main`, before any thread exists (it sets a variable of
/// the process environment).
#[allow(unsafe_code)]
pub fn ensure_trust_store() {
    if std::env::var_os("SSL_CERT_FILE").is_some() || reqwest::Client::builder().build().is_ok() {
        return;
    }
    let Some(path) = write_placeholder_anchor() else { return };
    // SAFETY: called at the start of `main`, before any other thread reads the environment.
    unsafe { std::env::set_var("SSL_CERT_FILE", path) };
}

/// The anchor in the user's cache directory (only they can change it), else a fresh temporary
/// file.
fn write_placeholder_anchor() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).or_else(|| std::env::home_dir().map(|h| h.join(".cache")));
    if let Some(dir) = cache.map(|c| c.join("aibox")) {
        let path = dir.join("no-system-ca-placeholder.pem");
        if std::fs::read(&path).is_ok_and(|b| b == PLACEHOLDER_ANCHOR.as_bytes()) {
            return Some(path);
        }
        if std::fs::create_dir_all(&dir).is_ok() && crate::atomic::write_atomic(&path, PLACEHOLDER_ANCHOR.as_bytes()).is_ok() {
            return Some(path);
        }
    }
    let mut tmp = tempfile::Builder::new().prefix("aibox-no-system-ca-").suffix(".pem").tempfile().ok()?;
    std::io::Write::write_all(&mut tmp, PLACEHOLDER_ANCHOR.as_bytes()).ok()?;
    tmp.keep().ok().map(|(_, p)| p)
}

/// A self-signed CA certificate whose private key was destroyed right after it was made
/// (`openssl req -x509 -newkey ec ...`, then `shred -u` on the key).
const PLACEHOLDER_ANCHOR: &str = "-----BEGIN CERTIFICATE-----
MIIByTCCAW+gAwIBAgIUPZ2MnO2E7qAAA3ntQdTsDZuK20owCgYIKoZIzj0EAwIw
OTE3MDUGA1UEAwwuYWlib3ggcGxhY2Vob2xkZXIgdHJ1c3QgYW5jaG9yIC0ga2V5
IGRpc2NhcmRlZDAgFw0yNjExMjQwMTQxMjNaGA8yMTI2MTAzMTAxNDEyM1owOTE3
MDUGA1UEAwwuYWlib3ggcGxhY2Vob2xkZXIgdHJ1c3QgYW5jaG9yIC0ga2V5IGRp
c2NhcmRlZDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABJsuNdGVC1YLrgRD7BFp
7qOd6N5ZgeG1EYdFxalI/YMLl8m2ZfDyNsZzDoKga1tdmzikVX3YOXxrr9gR//Wd
ZfmjUzBRMB0GA1UdDgQWBBRSpo2j5OOCRd11e2M1JoAQhlzuEDAfBgNVHSMEGDAW
gBRSpo2j5OOCRd11e2M1JoAQhlzuEDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49
BAMCA0gAMEUCIQDoyZi4v84WCsuW/9pRq+H7/lWWVtAfGV/xKoJrjt0vxgIgOqTa
4l3mhD104gvEVfWVflraAw2ZG41V0rV07Sstrc8=
-----END CERTIFICATE-----
";

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
