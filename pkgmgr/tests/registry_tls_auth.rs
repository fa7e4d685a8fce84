//! A registry as Harbor runs it: TLS with a private CA and basic auth (a robot account).
//! Credentials come from a Docker config.json (`auths` or a credential helper); the CA from
//! SSL_CERT_FILE or a Docker certs.d directory.

mod common;

use std::sync::LazyLock;

use common::{Env, Registry, json, run};

static SECURE: LazyLock<Registry> = LazyLock::new(|| Registry::start_tls_auth("robot", "s3cret"));

fn docker_config(env: &Env, body: &str) {
    std::fs::write(env.path().join("home/.docker/config.json"), body).unwrap();
}

fn auths(user: &str, password: &str) -> String {
    let auth = run("sh", &["-c", &format!("printf '%s' '{user}:{password}' | base64 -w0")]);
    format!(r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#, SECURE.addr)
}

#[test]
fn publish_and_verify_with_docker_credentials_and_private_ca() {
    let env = Env::new();
    docker_config(&env, &auths("robot", "s3cret"));
    let (key, public) = env.keys("cosign");
    let pack = env.pack("secure", "1.0.0");
    let store = SECURE.store("toolpacks");
    let ca = SECURE.ca_cert.as_ref().unwrap();
    let out = env.aibox().env("SSL_CERT_FILE", ca).args(["--json", "pack", "publish", pack.to_str().unwrap(), "--to", &store, "--key", &key]).output().unwrap();
    common::assert_success(&out, &["publish"]);
    let out = env.aibox().env("SSL_CERT_FILE", ca).args(["--json", "pack", "verify", &format!("{store}/secure:1.0.0"), "--key", &public]).output().unwrap();
    common::assert_success(&out, &["verify"]);
    assert_eq!(json(&String::from_utf8(out.stdout).unwrap())["verified"], true);

    // skopeo, with the same credentials and CA, reads what aibox wrote.
    let certs = env.path().join("skopeo-certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(ca, certs.join("ca.crt")).unwrap();
    let raw = run("skopeo", &["inspect", "--raw", "--creds", "robot:s3cret", "--cert-dir", certs.to_str().unwrap(), &format!("docker://{}/toolpacks/secure:1.0.0", SECURE.addr)]);
    assert_eq!(json(&raw)["artifactType"], "application/vnd.aibox.toolpack.v1");

    // The CA from a Docker certs.d directory works the same.
    let certs_d = env.path().join("certs.d");
    std::fs::create_dir_all(certs_d.join(&SECURE.addr)).unwrap();
    std::fs::copy(ca, certs_d.join(&SECURE.addr).join("ca.crt")).unwrap();
    let out = env.aibox().env("AIBOX_CERTS_DIR", &certs_d).args(["pack", "verify", &format!("{store}/secure:1.0.0"), "--key", &public]).output().unwrap();
    common::assert_success(&out, &["verify via certs.d"]);
}

#[test]
fn missing_or_wrong_credentials_say_which_were_tried() {
    let env = Env::new();
    let pack = env.pack("denied", "1.0.0");
    let store = SECURE.store("toolpacks");
    let ca = SECURE.ca_cert.as_ref().unwrap();

    let out = env.aibox().env("SSL_CERT_FILE", ca).args(["pack", "publish", pack.to_str().unwrap(), "--to", &store]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused access") && err.contains("anonymous"), "{err}");
    assert!(err.contains("docker login") || err.contains("config.json"), "{err}");

    docker_config(&env, &auths("robot", "wrong"));
    let out = env.aibox().env("SSL_CERT_FILE", ca).args(["pack", "publish", pack.to_str().unwrap(), "--to", &store]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused access") && err.contains("user robot"), "{err}");
    assert!(!err.contains("wrong"), "the password leaked into the message: {err}");

    // Environment credentials are the fallback.
    docker_config(&env, "{}");
    let out = env.aibox().env("SSL_CERT_FILE", ca).env("AIBOX_REGISTRY_USERNAME", "robot").env("AIBOX_REGISTRY_PASSWORD", "s3cret").args(["pack", "publish", pack.to_str().unwrap(), "--to", &store]).output().unwrap();
    common::assert_success(&out, &["publish with env credentials"]);
}

#[test]
fn credential_helper_is_used() {
    let env = Env::new();
    let bin = env.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-aiboxtest");
    std::fs::write(&helper, "#!/bin/sh\nread server\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"robot\",\"Secret\":\"s3cret\"}' \"$server\"\n").unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    docker_config(&env, &format!(r#"{{"credHelpers": {{"{}": "aiboxtest"}}}}"#, SECURE.addr));
    let pack = env.pack("helped", "1.0.0");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = env.aibox().env("PATH", path).env("SSL_CERT_FILE", SECURE.ca_cert.as_ref().unwrap()).args(["pack", "publish", pack.to_str().unwrap(), "--to", &SECURE.store("toolpacks")]).output().unwrap();
    common::assert_success(&out, &["publish with credential helper"]);
}

#[test]
fn untrusted_certificate_is_refused_with_how_to_trust_it() {
    let env = Env::new();
    docker_config(&env, &auths("robot", "s3cret"));
    let pack = env.pack("untrusted", "1.0.0");
    let err = env.fails(&["pack", "publish", pack.to_str().unwrap(), "--to", &SECURE.store("toolpacks")]);
    assert!(err.contains("not trusted") && err.contains("certs.d"), "{err}");

    // Listing the registry as insecure accepts the certificate (test registries only).
    let out = env.aibox().env("AIBOX_INSECURE_REGISTRIES", &SECURE.addr).args(["pack", "publish", pack.to_str().unwrap(), "--to", &SECURE.store("toolpacks")]).output().unwrap();
    common::assert_success(&out, &["publish to insecure-listed registry"]);
}
