//! Cosign key files: `cosign.key` (PKCS#8 encrypted with scrypt + nacl/secretbox, PEM label
//! `ENCRYPTED SIGSTORE PRIVATE KEY` or `ENCRYPTED COSIGN PRIVATE KEY`) and `cosign.pub`
//! (PEM SubjectPublicKeyInfo). The cryptography is sigstore-rs's.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use zeroize::Zeroizing;
use sigstore::crypto::signing_key::{SigStoreKeyPair, SigStoreSigner, kdf};
use sigstore::crypto::{CosignVerificationKey, SigningScheme};

use crate::digest::Digest;
use crate::error::{Error, Result};

const ENCRYPTED_LABELS: [&str; 2] = ["ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"];
const PRIVATE_HINT: &str = "pass a private key made by `aibox key generate` or `cosign generate-key-pair`";
const PUBLIC_HINT: &str = "pass the public key (cosign.pub) matching the signing key";

/// A private key ready to sign.
pub struct SigningKey {
    signer: SigStoreSigner,
    /// Fingerprint of the matching public key.
    pub fingerprint: String,
    /// The matching public key, PEM.
    pub public_pem: String,
}

impl SigningKey {
    /// Sign `message`; returns the raw (DER for ECDSA) signature.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.signer.sign(message).map_err(|e| Error::Missing(format!("signing failed: {e}")))
    }
}

/// A public key that signatures are checked against.
pub struct PublicKey {
    key: CosignVerificationKey,
    /// Where it was loaded from (or `inline`).
    pub source: String,
    /// `sha256:<hex>` of the DER SubjectPublicKeyInfo.
    pub fingerprint: String,
    /// The PEM text it was read from.
    pub pem: String,
}

impl PublicKey {
    /// Load a PEM public key file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(Error::io("cannot read public key", path))?;
        Self::from_pem(&bytes, &path.display().to_string()).map_err(|reason| Error::Key { path: path.to_owned(), reason, hint: PUBLIC_HINT })
    }

    /// Parse a PEM public key; `source` names it in messages.
    pub fn from_pem(pem: &[u8], source: &str) -> std::result::Result<Self, String> {
        let (label, der) = parse_pem(pem).ok_or("not a PEM file")?;
        if label.contains("PRIVATE KEY") {
            return Err("this is a private key; verification takes the public key".into());
        }
        if label != "PUBLIC KEY" {
            return Err(format!("PEM block `{label}` is not a public key"));
        }
        let key = CosignVerificationKey::try_from_der(&der).map_err(|e| format!("unsupported public key: {e}"))?;
        Ok(Self { key, source: source.to_owned(), fingerprint: Digest::of(&der).to_string(), pem: String::from_utf8_lossy(pem).into_owned() })
    }

    /// Whether `signature` (base64, as in Cosign's annotation) over `message` was made by this key.
    pub fn verifies(&self, signature_b64: &str, message: &[u8]) -> bool {
        self.key.verify_signature(sigstore::crypto::Signature::Base64Encoded(signature_b64.as_bytes()), message).is_ok()
    }
}

/// Load and decrypt a Cosign private key.
pub fn load_signing_key(path: &Path, password: &[u8]) -> Result<SigningKey> {
    let key_error = |reason: String| Error::Key { path: path.to_owned(), reason, hint: PRIVATE_HINT };
    let bytes = std::fs::read(path).map_err(Error::io("cannot read private key", path))?;
    let (label, content) = parse_pem(&bytes).ok_or_else(|| key_error("not a PEM file, so not a Cosign private key".into()))?;
    let der = if ENCRYPTED_LABELS.contains(&label.as_str()) {
        kdf::decrypt(&content, password).map_err(|e| match e {
            // sigstore-rs reports a failed secretbox open (wrong password) under this name.
            sigstore::errors::SigstoreError::PrivateKeyEncryptError(_) => Error::WrongPassword { path: path.to_owned() },
            other => key_error(format!("damaged encrypted key: {other}")),
        })?
    } else if label == "PRIVATE KEY" {
        content
    } else if label == "PUBLIC KEY" {
        return Err(key_error("this is a public key; signing takes the private key (cosign.key)".into()));
    } else {
        return Err(key_error(format!("PEM block `{label}` is not a Cosign private key")));
    };
    let pair = SigStoreKeyPair::from_der(&der).map_err(|e| key_error(format!("unsupported private key: {e}")))?;
    let schemes = [
        SigningScheme::ECDSA_P256_SHA256_ASN1,
        SigningScheme::ECDSA_P384_SHA384_ASN1,
        SigningScheme::ECDSA_P521_SHA512_ASN1,
        SigningScheme::ED25519,
    ];
    let signer = schemes
        .iter()
        .find_map(|s| pair.to_sigstore_signer(s).ok())
        .ok_or_else(|| key_error("only ECDSA and Ed25519 keys can sign here".into()))?;
    let public_der = pair.public_key_to_der().map_err(|e| key_error(e.to_string()))?;
    let public_pem = pair.public_key_to_pem().map_err(|e| key_error(e.to_string()))?;
    Ok(SigningKey { signer, fingerprint: Digest::of(&public_der).to_string(), public_pem })
}

/// The files `aibox key generate` wrote.
#[derive(Debug, serde::Serialize)]
pub struct GeneratedKeys {
    /// `<prefix>.key`
    pub private_key: PathBuf,
    /// `<prefix>.pub`
    pub public_key: PathBuf,
    /// Fingerprint of the public key.
    pub fingerprint: String,
}

/// Generate an ECDSA P-256 key pair as `cosign generate-key-pair` does: `<prefix>.key`
/// (encrypted with `password`, mode 0600) and `<prefix>.pub`.
pub fn generate(prefix: &Path, password: &[u8], force: bool) -> Result<GeneratedKeys> {
    let private_key = with_suffix(prefix, "key");
    let public_key = with_suffix(prefix, "pub");
    if !force {
        for p in [&private_key, &public_key] {
            if p.exists() {
                return Err(Error::Exists { path: p.clone() });
            }
        }
    }
    let fail = |e: sigstore::errors::SigstoreError| Error::Missing(format!("key generation failed: {e}"));
    let pair = SigningScheme::ECDSA_P256_SHA256_ASN1.create_signer().and_then(|s| s.to_sigstore_keypair()).map_err(fail)?;
    let encrypted = pair.private_key_to_encrypted_pem(password).map_err(fail)?;
    let public_pem = pair.public_key_to_pem().map_err(fail)?;
    let public_der = pair.public_key_to_der().map_err(fail)?;
    write_private(&private_key, encrypted.as_bytes())?;
    crate::atomic::write_atomic(&public_key, public_pem.as_bytes())?;
    Ok(GeneratedKeys { private_key, public_key, fingerprint: Digest::of(&public_der).to_string() })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // tempfile creates files 0600, so the secret is never readable by others, even briefly.
    let mut tmp = tempfile::Builder::new().permissions(std::fs::Permissions::from_mode(0o600)).tempfile_in(dir).map_err(Error::io("cannot write to", dir))?;
    tmp.write_all(bytes).map_err(Error::io("cannot write", path))?;
    tmp.as_file().sync_all().map_err(Error::io("cannot sync", path))?;
    tmp.persist(path).map_err(|e| Error::io("cannot write", path)(e.error))?;
    Ok(())
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

/// The label and decoded content of the first PEM block.
fn parse_pem(bytes: &[u8]) -> Option<(String, Vec<u8>)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_owned();
    let body_start = label_end + 5;
    let end_marker = format!("-----END {label}-----");
    let body_end = rest.find(&end_marker)?;
    let body: String = rest[body_start..body_end].chars().filter(|c| !c.is_whitespace()).collect();
    let content = base64::engine::general_purpose::STANDARD.decode(body).ok()?;
    Some((label, content))
}

/// The password for a private key: `COSIGN_PASSWORD` (empty allowed), else asked on the terminal.
pub fn password_from_env_or_prompt(confirm: bool) -> Result<Zeroizing<Vec<u8>>> {
    if let Some(p) = std::env::var_os("COSIGN_PASSWORD") {
        return Ok(Zeroizing::new(p.into_encoded_bytes()));
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(Error::Missing("no password: set COSIGN_PASSWORD (an empty value is allowed) or run on a terminal".into()));
    }
    let first = rpassword::prompt_password("Enter password for private key: ").map_err(Error::io("cannot read password from", "/dev/tty"))?;
    if confirm {
        let second = rpassword::prompt_password("Enter password for private key again: ").map_err(Error::io("cannot read password from", "/dev/tty"))?;
        if first != second {
            return Err(Error::Missing("passwords do not match".into()));
        }
    }
    Ok(Zeroizing::new(first.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_load_sign_verify() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("cosign");
        let keys = generate(&prefix, b"pw", false).unwrap();
        let text = std::fs::read_to_string(&keys.private_key).unwrap();
        assert!(text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&keys.private_key).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
        assert!(matches!(generate(&prefix, b"pw", false), Err(Error::Exists { .. })));

        let signer = load_signing_key(&keys.private_key, b"pw").unwrap();
        assert_eq!(signer.fingerprint, keys.fingerprint);
        assert!(matches!(load_signing_key(&keys.private_key, b"wrong"), Err(Error::WrongPassword { .. })));
        assert!(matches!(load_signing_key(&keys.public_key, b"pw"), Err(Error::Key { .. })));

        let signature = base64::engine::general_purpose::STANDARD.encode(signer.sign(b"payload").unwrap());
        let public = PublicKey::from_file(&keys.public_key).unwrap();
        assert!(public.verifies(&signature, b"payload"));
        assert!(!public.verifies(&signature, b"other payload"));
        assert!(PublicKey::from_file(&keys.private_key).is_err());
    }

    #[test]
    fn cosign_label_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let keys = generate(&dir.path().join("k"), b"", false).unwrap();
        let text = std::fs::read_to_string(&keys.private_key).unwrap().replace("SIGSTORE", "COSIGN");
        std::fs::write(&keys.private_key, text).unwrap();
        assert!(load_signing_key(&keys.private_key, b"").is_ok());
    }
}
