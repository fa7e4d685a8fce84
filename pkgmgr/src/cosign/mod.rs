//! Cosign keys and signatures, interoperable with the `cosign` CLI in both directions.

pub mod keys;
pub mod signature;

pub use keys::{GeneratedKeys, PublicKey, SigningKey, generate, load_signing_key, password_from_env_or_prompt};
pub use signature::{FoundSignature, SignOutcome, VerifiedSignature, sign, signatures, verify};
