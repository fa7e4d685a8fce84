//! Cosign interoperability in both directions, checked against an independent implementation of
//! cosign's documented formats (tests/peers/cosign_fixture.py: Python `cryptography` + PyNaCl):
//! a cosign-format key made elsewhere signs in aibox, aibox's signatures verify there, and a
//! signature made there verifies in aibox.

mod common;

use common::{Env, REGISTRY, json, run, workspace};

fn fixture() -> String {
    workspace().join("tests/peers/cosign_fixture.py").display().to_string()
}

#[test]
fn aibox_signs_with_a_cosign_key_and_cosign_format_verifies_it() {
    let env = Env::new();
    let prefix = env.path().join("external");
    run("python3", &[&fixture(), "make-key", prefix.to_str().unwrap(), "test-password"]);
    let key = format!("{}.key", prefix.display());
    assert!(std::fs::read_to_string(&key).unwrap().starts_with("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----"));

    let pack = env.pack("interop", "1.0.0");
    let store = REGISTRY.store("interop");
    let out = json(&env.ok(&["--json", "pack", "publish", pack.to_str().unwrap(), "--to", &store, "--key", &key]));
    let digest = out["published"]["digest"].as_str().unwrap();

    let verified = run("python3", &[&fixture(), "verify", &REGISTRY.addr, "interop/interop", digest, &format!("{}.pub", prefix.display())]);
    assert!(verified.contains(&format!("verified: {}/interop/interop", REGISTRY.addr)), "{verified}");

    // The independent verifier refuses a key that did not sign.
    let (_, other) = env.keys("other");
    let out = std::process::Command::new("python3").args([&fixture(), "verify", &REGISTRY.addr, "interop/interop", digest, &other]).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn aibox_verifies_a_signature_made_in_cosign_format() {
    let env = Env::new();
    let prefix = env.path().join("external");
    run("python3", &[&fixture(), "make-key", prefix.to_str().unwrap(), "pw"]);
    let pack = env.pack("external-signed", "2.0.0");
    let store = REGISTRY.store("interop");
    let out = json(&env.ok(&["--json", "pack", "publish", pack.to_str().unwrap(), "--to", &store]));
    let digest = out["published"]["digest"].as_str().unwrap();
    let reference = format!("{store}/external-signed:2.0.0");
    let public = format!("{}.pub", prefix.display());

    let err = env.fails(&["pack", "verify", &reference, "--key", &public]);
    assert!(err.contains("not signed"), "{err}");

    run("python3", &[&fixture(), "sign", &REGISTRY.addr, "interop/external-signed", digest, &format!("{}.raw.pem", prefix.display())]);
    let verified = json(&env.ok(&["--json", "pack", "verify", &reference, "--key", &public]));
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["signatures"][0]["docker_reference"], format!("{}/interop/external-signed", REGISTRY.addr));

    // aibox adds its own signature beside the external one (cosign appends layers too).
    let (key, own) = env.keys("own");
    env.ok(&["pack", "sign", &reference, "--key", &key]);
    let inspected = json(&env.ok(&["--json", "pack", "inspect", &reference, "--key", &public, "--key", &own]));
    let sigs = inspected["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2);
    assert!(sigs.iter().all(|s| s["verified_by"].is_string()), "{sigs:?}");
}
