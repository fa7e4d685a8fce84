//! `docker://HOST/NAMESPACE`: an OCI distribution registry (Harbor, distribution, ...), through
//! oci-client.
//!
//! Like Docker, a loopback registry (127.0.0.0/8, ::1, localhost) may speak plain HTTP, and so may
//! a host listed in `insecure_registries`; any other host must speak verified TLS. A listed
//! insecure host may also present a certificate we cannot verify.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use reqwest::header::{self, HeaderValue};
use reqwest::{Method, Response, StatusCode};

use super::registry_config::{Credentials, credentials_for, is_loopback};
use super::retry::{RetryPolicy, parse_retry_after, transient_error, transient_status};
use super::{Blob, BlobData, BlobReader, RawManifest, RegistryConfig, Store, StoreLocation};
use crate::digest::Digest;
use crate::error::{Error, Result};
use aibox_schema::media_types as mt;

const ACCEPTED_MANIFESTS: &[&str] = &[mt::OCI_MANIFEST, mt::OCI_INDEX, mt::DOCKER_MANIFEST, mt::DOCKER_MANIFEST_LIST];
/// Manifests larger than this are refused (the distribution registry's own limit is 4 MiB).
const MAX_MANIFEST: usize = 4 << 20;
/// A download that breaks this many times in a row without a new byte arriving is given up.
const MAX_RESUMES_WITHOUT_PROGRESS: u32 = 5;

/// A registry namespace.
pub struct Registry {
    location: StoreLocation,
    endpoint: Arc<Endpoint>,
}

/// One registry host: its address, clients, credentials, tokens and retry policy. Shared by
/// the store and the downloads it opened (which resume on their own).
struct Endpoint {
    /// host[:port]
    registry: String,
    /// `https://host[:port]` or `http://host[:port]`.
    base: String,
    /// oci-client: token negotiation (Docker's and Harbor's token flow), tag and catalog listing.
    client: Client,
    /// Every transfer (manifests, blobs, uploads, mounts): aibox's own requests, so each can be
    /// retried, honour `Retry-After` and resume with `Range`, which oci-client does not do.
    http: reqwest::Client,
    credentials: Credentials,
    retry: RetryPolicy,
    /// `Authorization` per (repository, push), fetched once per process and dropped on a 401.
    tokens: tokio::sync::Mutex<HashMap<(String, bool), Option<HeaderValue>>>,
    /// How the registry asks for credentials, from one `GET /v2/` per process.
    challenge: tokio::sync::OnceCell<Challenge>,
}

/// What `GET /v2/` said about authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Challenge {
    /// 200, or 401 with a Basic challenge: no token to negotiate (Basic credentials, if any,
    /// are sent as they are).
    NoToken,
    /// 401 with a Bearer challenge (Docker's token flow, Harbor): a token per repository.
    Bearer,
}

impl Challenge {
    fn of(response: &Response) -> Self {
        let bearer = response.status() == StatusCode::UNAUTHORIZED
            && response.headers().get_all(header::WWW_AUTHENTICATE).iter().any(|v| v.to_str().is_ok_and(|v| v.trim_start().to_ascii_lowercase().starts_with("bearer")));
        if bearer { Self::Bearer } else { Self::NoToken }
    }
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
        let (transport, challenge) = if is_loopback(&registry) || config.is_insecure(&registry) {
            probe(&registry, &certificates, config.is_insecure(&registry), config).await?
        } else {
            (Transport::Https, None)
        };
        let user_agent = concat!("aibox/", env!("CARGO_PKG_VERSION"));
        let client_config = ClientConfig {
            protocol: match transport {
                Transport::Http => ClientProtocol::Http,
                Transport::Https | Transport::HttpsUnverified => ClientProtocol::Https,
            },
            accept_invalid_certificates: matches!(transport, Transport::HttpsUnverified),
            extra_root_certificates: certificates.clone(),
            connect_timeout: Some(config.connect_timeout),
            read_timeout: Some(config.read_timeout),
            user_agent,
            ..ClientConfig::default()
        };
        let mut http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .user_agent(user_agent)
            .tls_danger_accept_invalid_certs(matches!(transport, Transport::HttpsUnverified));
        let roots = certificates.iter().filter_map(|c| reqwest::Certificate::from_pem(&c.data).ok()).collect::<Vec<_>>();
        if !roots.is_empty() {
            http = http.tls_certs_merge(roots);
        }
        let http = http.build().map_err(|e| Error::RegistryUnreachable { registry: registry.clone(), reason: error_chain(&e) })?;
        let scheme = if matches!(transport, Transport::Http) { "http" } else { "https" };
        let endpoint = Endpoint {
            base: format!("{scheme}://{registry}"),
            registry,
            client: Client::new(client_config),
            http,
            credentials,
            retry: config.retry,
            tokens: tokio::sync::Mutex::default(),
            challenge: tokio::sync::OnceCell::new_with(challenge),
        };
        Ok(Self { location, endpoint: Arc::new(endpoint) })
    }

    fn reference(&self, name: &str, reference: &str) -> Reference {
        let repository = self.location.repository(name);
        match reference.parse::<Digest>() {
            Ok(d) => Reference::with_digest(self.endpoint.registry.clone(), repository, d.to_string()),
            Err(_) => Reference::with_tag(self.endpoint.registry.clone(), repository, reference.to_owned()),
        }
    }

    /// An oci-client call (listing), tried again on transient failures.
    async fn with_retries<T, F, Fut>(&self, mut call: F) -> std::result::Result<T, OciDistributionError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, OciDistributionError>>,
    {
        let mut attempt = 1;
        loop {
            match call().await {
                Err(e) if attempt < self.endpoint.retry.attempts && oci_transient(&e) => {
                    tokio::time::sleep(self.endpoint.retry.delay(attempt, None)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn error(&self, operation: &str, name: &str, e: OciDistributionError) -> Error {
        let repository = self.location.repository(name);
        let registry = self.endpoint.registry.clone();
        match e {
            OciDistributionError::UnauthorizedError { .. } | OciDistributionError::AuthenticationFailure(_) => self.endpoint.denied(&repository, 401),
            OciDistributionError::ServerError { code: code @ (401 | 403), .. } => self.endpoint.denied(&repository, code),
            OciDistributionError::RegistryError { ref envelope, .. }
                if envelope.errors.iter().any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)) =>
            {
                self.endpoint.denied(&repository, if envelope.errors.iter().any(|e| matches!(e.code, OciErrorCode::Denied)) { 403 } else { 401 })
            }
            OciDistributionError::RequestError(ref r) if r.is_connect() || r.is_timeout() => {
                let reason = error_chain(r);
                if reason.contains("certificate") { Error::UntrustedCertificate { registry, reason } } else { Error::RegistryUnreachable { registry, reason } }
            }
            other => Error::Registry { registry, operation: format!("{operation} ({repository})"), reason: error_chain(&other) },
        }
    }

    /// `/v2/<repository>/<kind>/<reference>`.
    fn path(&self, name: &str, kind: &str, reference: &str) -> String {
        format!("/v2/{}/{kind}/{reference}", self.location.repository(name))
    }

    /// Start an upload session; its `Location`.
    async fn begin_upload(&self, name: &str) -> Result<String> {
        let repository = self.location.repository(name);
        let path = format!("/v2/{repository}/blobs/uploads/");
        let response = self.endpoint.send(Method::POST, &path, &repository, true, |r| r.header(header::CONTENT_LENGTH, 0)).await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.endpoint.unexpected("POST", &path, &repository, response).await);
        }
        upload_location(&response).ok_or_else(|| Error::Registry {
            registry: self.endpoint.registry.clone(),
            operation: format!("POST {path}"),
            reason: "the upload session has no Location".into(),
        })
    }

    /// Upload a blob whose body can be made again for each try (bytes held, or a file).
    async fn upload(&self, name: &str, digest: &Digest, size: u64, body: impl Fn() -> Result<reqwest::Body>) -> Result<()> {
        let repository = self.location.repository(name);
        let mut attempt = 1;
        loop {
            let location = self.begin_upload(name).await?;
            let url = with_digest_query(&location, digest);
            let body = body()?;
            let response = self
                .endpoint
                .send_once(Method::PUT, &url, &repository, true, |r| r.header(header::CONTENT_LENGTH, size).header(header::CONTENT_TYPE, "application/octet-stream").body(body))
                .await;
            let failure = match response {
                Ok(r) if r.status() == StatusCode::CREATED => return Ok(()),
                Ok(r) if transient_status(r.status()) || r.status() == StatusCode::NOT_FOUND => describe_status(r.status()),
                Ok(r) => return Err(self.endpoint.unexpected("PUT", &url, &repository, r).await),
                Err(Attempt::Transient(reason)) => reason,
                Err(Attempt::Fatal(e)) => return Err(e),
            };
            // The answer may have been lost after the registry stored the blob.
            if self.has_blob(name, digest).await? {
                return Ok(());
            }
            if attempt >= self.endpoint.retry.attempts {
                return Err(Error::RegistryFailed { registry: self.endpoint.registry.clone(), request: format!("PUT {}", path_of(&url)), attempts: attempt, last: failure });
            }
            tokio::time::sleep(self.endpoint.retry.delay(attempt, None)).await;
            attempt += 1;
        }
    }
}

/// Why one try failed.
enum Attempt {
    /// Worth another try (broken connection, timeout).
    Transient(String),
    /// Not (a refused certificate, a malformed request).
    Fatal(Error),
}

impl Endpoint {
    fn denied(&self, repository: &str, status: u16) -> Error {
        Error::RegistryDenied { registry: self.registry.clone(), repository: repository.to_owned(), status, credentials: self.credentials.source.clone() }
    }

    /// The `Authorization` header for `repository`: a token negotiated by oci-client (once per
    /// process), else the Basic credentials, else none.
    async fn authorization(&self, repository: &str, push: bool) -> Option<HeaderValue> {
        let key = (repository.to_owned(), push);
        if let Some(cached) = self.tokens.lock().await.get(&key) {
            return cached.clone();
        }
        let basic = || match &self.credentials.auth {
            RegistryAuth::Basic(user, password) => HeaderValue::from_str(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))).ok(),
            RegistryAuth::Bearer(token) => HeaderValue::from_str(&format!("Bearer {token}")).ok(),
            RegistryAuth::Anonymous => None,
        };
        let sensitive = |v: Option<HeaderValue>| {
            v.map(|mut v| {
                v.set_sensitive(true);
                v
            })
        };
        let challenge = self
            .challenge
            .get_or_try_init(|| async {
                let probe = self.http.get(format!("{}/v2/", self.base)).send().await?;
                Ok::<_, reqwest::Error>(Challenge::of(&probe))
            })
            .await;
        // Only a Bearer challenge needs a token; a registry that could not be asked is asked
        // again by the next request.
        if matches!(challenge, Ok(Challenge::NoToken)) {
            return sensitive(basic());
        }
        let op = if push { oci_client::RegistryOperation::Push } else { oci_client::RegistryOperation::Pull };
        let reference = Reference::with_tag(self.registry.clone(), repository.to_owned(), "latest".to_owned());
        let negotiated = self.client.auth(&reference, &self.credentials.auth, op).await;
        let value = sensitive(match &negotiated {
            Ok(Some(token)) => HeaderValue::from_str(&format!("Bearer {token}")).ok(),
            _ => basic(),
        });
        // A failed negotiation is not remembered: the next try negotiates again.
        if negotiated.is_ok() {
            self.tokens.lock().await.insert(key, value.clone());
        }
        value
    }

    /// Send one request (`target`: a path on this registry or an absolute URL it gave us).
    async fn send_once(&self, method: Method, target: &str, repository: &str, push: bool, build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> std::result::Result<Response, Attempt> {
        let url = if target.starts_with("http://") || target.starts_with("https://") { target.to_owned() } else { format!("{}{target}", self.base) };
        let mut request = build(self.http.request(method, &url));
        // Credentials go only to the registry itself: an upload Location naming another host
        // (or plain HTTP) gets none.
        if url.starts_with(&format!("{}/", self.base))
            && let Some(auth) = self.authorization(repository, push).await
        {
            request = request.header(header::AUTHORIZATION, auth);
        }
        match request.send().await {
            Ok(response) => {
                if response.status() == StatusCode::UNAUTHORIZED {
                    // An expired token: negotiate a new one on the next request.
                    self.tokens.lock().await.remove(&(repository.to_owned(), push));
                }
                Ok(response)
            }
            Err(e) if transient_error(&e) => Err(Attempt::Transient(error_chain(&e))),
            Err(e) => {
                let reason = error_chain(&e);
                Err(Attempt::Fatal(if reason.contains("certificate") {
                    Error::UntrustedCertificate { registry: self.registry.clone(), reason }
                } else {
                    Error::RegistryUnreachable { registry: self.registry.clone(), reason }
                }))
            }
        }
    }

    /// Send a request that may be sent again (no body, or one `build` makes anew), trying
    /// again on server errors, rate limits and broken connections: capped exponential backoff
    /// with jitter, or the `Retry-After` the registry asked for. A 401 after a cached token is
    /// tried once more with a fresh one. Other answers are the caller's to read.
    async fn send(&self, method: Method, target: &str, repository: &str, push: bool, build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> Result<Response> {
        let mut attempt = 1;
        let mut renewed = false;
        loop {
            let had_token = self.tokens.lock().await.contains_key(&(repository.to_owned(), push));
            let (last, retry_after) = match self.send_once(method.clone(), target, repository, push, &build).await {
                Ok(r) if r.status() == StatusCode::UNAUTHORIZED && had_token && !renewed => {
                    renewed = true;
                    continue;
                }
                Ok(r) if transient_status(r.status()) => {
                    let retry_after = r.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| parse_retry_after(v, SystemTime::now()));
                    (describe_status(r.status()), retry_after)
                }
                Ok(r) => return Ok(r),
                Err(Attempt::Transient(reason)) => (reason, None),
                Err(Attempt::Fatal(e)) => return Err(e),
            };
            let request = format!("{method} {}", path_of(target));
            if retry_after.is_some_and(|wait| wait > self.retry.max_retry_after) {
                let wait = retry_after.unwrap_or_default().as_secs();
                return Err(Error::RegistryFailed { registry: self.registry.clone(), request, attempts: attempt, last: format!("{last}, retry after {wait} s (longer than the {} s aibox waits)", self.retry.max_retry_after.as_secs()) });
            }
            if attempt >= self.retry.attempts {
                return Err(Error::RegistryFailed { registry: self.registry.clone(), request, attempts: attempt, last });
            }
            tokio::time::sleep(self.retry.delay(attempt, retry_after)).await;
            attempt += 1;
        }
    }

    /// An answer the caller did not expect, as an error naming the request and the status.
    async fn unexpected(&self, method: &str, target: &str, repository: &str, response: Response) -> Error {
        let status = response.status();
        if matches!(status.as_u16(), 401 | 403) {
            return self.denied(repository, status.as_u16());
        }
        let body = response.text().await.unwrap_or_default();
        let detail = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| body.chars().take(200).collect());
        let reason = if detail.trim().is_empty() { describe_status(status) } else { format!("{}: {}", describe_status(status), detail.trim()) };
        Error::Registry { registry: self.registry.clone(), operation: format!("{method} {}", path_of(target)), reason }
    }
}

/// `503 Service Unavailable`.
fn describe_status(status: StatusCode) -> String {
    format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""))
}

/// The path (and query) of a URL, for messages: never a host's credentials or a token.
fn path_of(target: &str) -> String {
    match reqwest::Url::parse(target) {
        Ok(url) => url.path().to_owned(),
        Err(_) => target.split('?').next().unwrap_or(target).to_owned(),
    }
}

fn upload_location(response: &Response) -> Option<String> {
    let location = response.headers().get(header::LOCATION)?.to_str().ok()?;
    if location.starts_with("http://") || location.starts_with("https://") {
        return Some(location.to_owned());
    }
    let base = response.url();
    base.join(location).ok().map(String::from)
}

fn with_digest_query(location: &str, digest: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

/// Whether an oci-client failure is worth another try.
fn oci_transient(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ServerError { code, .. } => StatusCode::from_u16(*code).is_ok_and(transient_status),
        OciDistributionError::RequestError(r) => transient_error(r),
        OciDistributionError::IoError(_) => true,
        _ => false,
    }
}

/// A blob download that resumes where it broke: a connection reset, a truncated body, a stall
/// past the read timeout or a body shorter than the blob is followed by a `Range` request for
/// the rest (a registry that ignores `Range` sends it all again; the part already read is
/// skipped). The caller checks the digest of what it read, as for every store.
struct Download {
    endpoint: Arc<Endpoint>,
    path: String,
    repository: String,
    /// Bytes handed out so far.
    offset: u64,
    /// The blob's size when known (a body that ends before it is resumed).
    size: Option<u64>,
    body: Option<futures_util::stream::BoxStream<'static, reqwest::Result<Bytes>>>,
    /// Bytes still to drop from the current body (a registry that answered 200 to `Range`).
    skip: u64,
    breaks_without_progress: u32,
    last_break: String,
}

impl Download {
    /// Ask for the blob from `offset` on.
    async fn request(&mut self) -> std::io::Result<()> {
        let offset = self.offset;
        let response = self
            .endpoint
            .send(Method::GET, &self.path, &self.repository, false, |r| if offset > 0 { r.header(header::RANGE, format!("bytes={offset}-")) } else { r })
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        match response.status() {
            StatusCode::PARTIAL_CONTENT if offset > 0 => {
                let start = response.headers().get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("bytes ")?.split('-').next()?.parse::<u64>().ok());
                if start != Some(offset) {
                    return Err(std::io::Error::other(format!("registry {} resumed {} at {start:?}, not at byte {offset}", self.endpoint.registry, self.path)));
                }
                self.skip = 0;
            }
            StatusCode::OK => self.skip = offset,
            // Nothing after `offset`: the blob ended there (the caller checks its digest).
            StatusCode::RANGE_NOT_SATISFIABLE if offset > 0 => {
                self.body = Some(futures_util::stream::empty().boxed());
                self.size = Some(offset);
                return Ok(());
            }
            _ => {
                let e = self.endpoint.unexpected("GET", &self.path, &self.repository, response).await;
                return Err(std::io::Error::other(e.to_string()));
            }
        }
        self.body = Some(response.bytes_stream().boxed());
        Ok(())
    }

    /// The next piece of the blob; `None` at its end.
    async fn next(&mut self) -> Option<std::io::Result<Bytes>> {
        loop {
            if self.body.is_none()
                && let Err(e) = self.request().await
            {
                return Some(Err(e));
            }
            let body = self.body.as_mut()?;
            match body.next().await {
                Some(Ok(mut chunk)) => {
                    if self.skip > 0 {
                        let drop = usize::try_from(self.skip.min(chunk.len() as u64)).unwrap_or(chunk.len());
                        self.skip -= drop as u64;
                        chunk = chunk.slice(drop..);
                        if chunk.is_empty() {
                            continue;
                        }
                    }
                    self.offset += chunk.len() as u64;
                    self.breaks_without_progress = 0;
                    return Some(Ok(chunk));
                }
                Some(Err(e)) => self.last_break = error_chain(&e),
                None if self.size.is_some_and(|size| self.offset < size) && self.skip == 0 => {
                    self.last_break = format!("the body ended at byte {} of {}", self.offset, self.size.unwrap_or_default());
                }
                None => return None,
            }
            // The body broke. Every byte of the blob arrived (a Content-Length that claimed
            // more): done, the caller checks the digest. Else resume, unless it keeps breaking
            // without a new byte.
            self.body = None;
            if self.size.is_some_and(|size| self.offset >= size) {
                return None;
            }
            self.breaks_without_progress += 1;
            if self.breaks_without_progress > MAX_RESUMES_WITHOUT_PROGRESS.min(self.endpoint.retry.attempts) {
                return Some(Err(std::io::Error::other(format!(
                    "registry {}: GET {} broke {} times at byte {} without progress; last: {}",
                    self.endpoint.registry, self.path, self.breaks_without_progress, self.offset, self.last_break
                ))));
            }
            tokio::time::sleep(self.endpoint.retry.delay(self.breaks_without_progress, None)).await;
        }
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
            let page = self
                .with_retries(|| self.endpoint.client.catalog(&reference, &self.endpoint.credentials.auth, Some(1000), last.as_deref()))
                .await
                .map_err(|e| self.error("listing repositories", "", e))?;
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
        let repository = self.location.repository(name);
        let mut tags = Vec::new();
        let mut next = Some(format!("/v2/{repository}/tags/list?n=1000"));
        while let Some(target) = next.take() {
            let response = self.endpoint.send(Method::GET, &target, &repository, false, |r| r).await?;
            match response.status() {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND => break,
                _ => return Err(self.endpoint.unexpected("GET", &target, &repository, response).await),
            }
            // Pages: `Link: </v2/...?last=X&n=1000>; rel="next"`.
            next = response.headers().get(header::LINK).and_then(|v| v.to_str().ok()).and_then(|v| Some(v.split_once('<')?.1.split_once('>')?.0.to_owned()));
            let page: TagList = response.json().await.map_err(|e| Error::Registry { registry: self.endpoint.registry.clone(), operation: format!("GET {}", path_of(&target)), reason: error_chain(&e) })?;
            tags.extend(page.tags.unwrap_or_default());
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    async fn fetch_manifest(&self, name: &str, reference: &str) -> Result<Option<RawManifest>> {
        let repository = self.location.repository(name);
        let path = self.path(name, "manifests", reference);
        let accept = ACCEPTED_MANIFESTS.join(", ");
        let mut attempt = 1;
        loop {
            let response = self.endpoint.send(Method::GET, &path, &repository, false, |r| r.header(header::ACCEPT, &accept)).await?;
            match response.status() {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND => return Ok(None),
                _ => return Err(self.endpoint.unexpected("GET", &path, &repository, response).await),
            }
            let too_large = || Error::Corrupt { store: self.location.to_string(), reason: format!("manifest {name}:{reference} is larger than {MAX_MANIFEST} bytes") };
            if response.content_length().is_some_and(|l| l > MAX_MANIFEST as u64) {
                return Err(too_large());
            }
            let mut body = response.bytes_stream();
            let mut bytes = Vec::new();
            let mut broken = None;
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(c) if bytes.len() + c.len() > MAX_MANIFEST => return Err(too_large()),
                    Ok(c) => bytes.extend_from_slice(&c),
                    Err(e) => {
                        broken = Some(error_chain(&e));
                        break;
                    }
                }
            }
            match broken {
                // A manifest is small: one that broke on the way is fetched again whole.
                Some(last) if attempt >= self.endpoint.retry.attempts => {
                    return Err(Error::RegistryFailed { registry: self.endpoint.registry.clone(), request: format!("GET {path}"), attempts: attempt, last });
                }
                Some(_) => {
                    tokio::time::sleep(self.endpoint.retry.delay(attempt, None)).await;
                    attempt += 1;
                }
                None => {
                    let manifest = RawManifest::new(Bytes::from(bytes));
                    super::check_manifest_digest(&self.location, reference, &manifest)?;
                    return Ok(Some(manifest));
                }
            }
        }
    }

    async fn has_blob(&self, name: &str, digest: &Digest) -> Result<bool> {
        let repository = self.location.repository(name);
        let path = self.path(name, "blobs", digest.as_str());
        let response = self.endpoint.send(Method::HEAD, &path, &repository, false, |r| r).await?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.endpoint.unexpected("HEAD", &path, &repository, response).await),
        }
    }

    async fn open_blob(&self, name: &str, digest: &Digest, size: Option<u64>) -> Result<BlobReader> {
        let repository = self.location.repository(name);
        let path = self.path(name, "blobs", digest.as_str());
        let response = self.endpoint.send(Method::GET, &path, &repository, false, |r| r).await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(Error::NotFound { what: format!("blob {digest} of {name}"), store: self.location.to_string() }),
            _ => return Err(self.endpoint.unexpected("GET", &path, &repository, response).await),
        }
        let download = Download {
            endpoint: self.endpoint.clone(),
            path,
            repository,
            offset: 0,
            size,
            body: Some(response.bytes_stream().boxed()),
            skip: 0,
            breaks_without_progress: 0,
            last_break: String::new(),
        };
        let stream = futures_util::stream::unfold(download, |mut d| async move { d.next().await.map(|item| (item, d)) });
        Ok(Box::pin(tokio_util::io::StreamReader::new(stream)))
    }

    async fn push_blob(&self, name: &str, blob: &Blob) -> Result<()> {
        match &blob.data {
            BlobData::Bytes(b) => self.upload(name, &blob.digest, b.len() as u64, || Ok(reqwest::Body::from(b.clone()))).await,
            BlobData::File(path) => {
                let size = std::fs::metadata(path).map_err(Error::io("cannot read", path))?.len();
                self.upload(name, &blob.digest, size, || {
                    let file = std::fs::File::open(path).map_err(Error::io("cannot read", path))?;
                    Ok(reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), 256 * 1024)))
                })
                .await
            }
        }
    }

    async fn push_blob_stream(&self, name: &str, digest: &Digest, size: u64, reader: BlobReader) -> Result<()> {
        // One streamed PUT: a stream cannot be sent twice, so a failure here is the caller's to
        // retry from its source (copy does).
        let repository = self.location.repository(name);
        let location = self.begin_upload(name).await?;
        let url = with_digest_query(&location, digest);
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024));
        let response = self.endpoint.send_once(Method::PUT, &url, &repository, true, |r| r.header(header::CONTENT_LENGTH, size).header(header::CONTENT_TYPE, "application/octet-stream").body(body)).await;
        match response {
            Ok(r) if r.status() == StatusCode::CREATED => Ok(()),
            Ok(r) if transient_status(r.status()) => Err(Error::RegistryFailed { registry: self.endpoint.registry.clone(), request: format!("PUT {}", path_of(&url)), attempts: 1, last: describe_status(r.status()) }),
            Ok(r) => Err(self.endpoint.unexpected("PUT", &url, &repository, r).await),
            Err(Attempt::Transient(last)) => Err(Error::RegistryFailed { registry: self.endpoint.registry.clone(), request: format!("PUT {}", path_of(&url)), attempts: 1, last }),
            Err(Attempt::Fatal(e)) => Err(e),
        }
    }

    async fn mount_blob(&self, name: &str, digest: &Digest, from: &StoreLocation, from_name: &str) -> Result<bool> {
        let StoreLocation::Registry { registry, .. } = from else { return Ok(false) };
        if *registry != self.endpoint.registry {
            return Ok(false);
        }
        let repository = self.location.repository(name);
        let path = format!("/v2/{repository}/blobs/uploads/?mount={digest}&from={}", from.repository(from_name));
        let response = self.endpoint.send(Method::POST, &path, &repository, true, |r| r.header(header::CONTENT_LENGTH, 0)).await?;
        // 201 is a mount; 202 (the registry opened an upload instead) means send it.
        Ok(response.status() == StatusCode::CREATED)
    }

    async fn push_manifest(&self, name: &str, tag: Option<&str>, manifest: &RawManifest) -> Result<()> {
        let content_type = HeaderValue::from_str(&manifest.media_type).map_err(|_| Error::Corrupt {
            store: self.location.to_string(),
            reason: format!("invalid manifest media type {:?}", manifest.media_type),
        })?;
        let repository = self.location.repository(name);
        let path = self.path(name, "manifests", tag.unwrap_or(manifest.digest.as_str()));
        let response = self.endpoint.send(Method::PUT, &path, &repository, true, |r| r.header(header::CONTENT_TYPE, content_type.clone()).body(manifest.bytes.clone())).await?;
        if response.status() == StatusCode::CREATED {
            Ok(())
        } else {
            Err(self.endpoint.unexpected("PUT", &path, &repository, response).await)
        }
    }
}

/// `GET /v2/<name>/tags/list`.
#[derive(serde::Deserialize)]
struct TagList {
    /// `null` for a repository with no tags.
    tags: Option<Vec<String>>,
}


/// Decide how to speak to a loopback or insecure registry: verified TLS when it answers that
/// way, else plain HTTP, else (only when listed insecure) unverified TLS.
async fn probe(registry: &str, certificates: &[oci_client::client::Certificate], insecure: bool, config: &RegistryConfig) -> Result<(Transport, Option<Challenge>)> {
    let mut builder = reqwest::Client::builder().connect_timeout(config.connect_timeout).timeout(config.read_timeout.max(Duration::from_secs(20)));
    let roots: Vec<reqwest::Certificate> = certificates.iter().filter_map(|c| reqwest::Certificate::from_pem(&c.data).ok()).collect();
    if !roots.is_empty() {
        builder = builder.tls_certs_merge(roots);
    }
    let client = builder.build().map_err(|e| Error::RegistryUnreachable { registry: registry.to_owned(), reason: error_chain(&e) })?;
    let https_error = match client.get(format!("https://{registry}/v2/")).send().await {
        Ok(response) => return Ok((Transport::Https, Some(Challenge::of(&response)))),
        Err(e) => error_chain(&e),
    };
    if let Ok(response) = client.get(format!("http://{registry}/v2/")).send().await {
        let challenge = Challenge::of(&response);
        let tls_only = response.status() == reqwest::StatusCode::BAD_REQUEST
            && response.text().await.is_ok_and(|t| t.contains("HTTPS server"));
        if !tls_only {
            return Ok((Transport::Http, Some(challenge)));
        }
        if insecure {
            return Ok((Transport::HttpsUnverified, None));
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
