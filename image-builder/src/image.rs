//! The image config and manifest: JSON written in a fixed key order from fixed inputs, so the
//! same inputs give the same digests.

use std::collections::BTreeMap;

use aibox_pkgmgr::digest::Digest;
use aibox_pkgmgr::store::RawManifest;
use aibox_pkgmgr::toolpacks::State;
use aibox_schema::media_types::{OCI_IMAGE_CONFIG, OCI_MANIFEST};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use serde_json::{Value, json};

/// PATH of an image whose base sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One layer of an image.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Media type, digest and size of the blob.
    pub descriptor: OciDescriptor,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// What made it (the history entry).
    pub created_by: String,
}

/// Everything an image config is made of.
#[derive(Debug, Clone)]
pub struct ConfigInputs<'a> {
    /// The base image's config (for `image:` bases and variants), else `None`.
    pub base: Option<&'a Value>,
    /// `linux/amd64`.
    pub platform: &'a str,
    /// RFC 3339.
    pub created: &'a str,
    /// `User` (`uid:gid`) and `WorkingDir`, when the image has the aibox user.
    pub user: Option<(String, String)>,
    /// `Cmd`, when set.
    pub cmd: Option<&'a [String]>,
    /// Packs whose PATH and env go into `Env`.
    pub state: Option<&'a State>,
    /// `Labels` added.
    pub labels: &'a BTreeMap<String, String>,
    /// The layers added on top of the base's.
    pub layers: &'a [Layer],
}

/// The image config JSON.
pub fn config(inputs: &ConfigInputs<'_>) -> Vec<u8> {
    let (os, arch) = inputs.platform.split_once('/').unwrap_or(("linux", inputs.platform));
    let mut doc = inputs.base.cloned().unwrap_or_else(|| json!({}));
    let obj = doc.as_object_mut().expect("config is an object");
    obj.insert("created".into(), json!(inputs.created));
    obj.entry("architecture").or_insert_with(|| json!(arch));
    obj.entry("os").or_insert_with(|| json!(os));
    let config = obj.entry("config").or_insert_with(|| json!({}));
    if !config.is_object() {
        *config = json!({});
    }
    let config = config.as_object_mut().expect("checked");
    let mut env: Vec<(String, String)> = config
        .get("Env")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).filter_map(|e| e.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
        .unwrap_or_default();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.insert(0, ("PATH".into(), DEFAULT_PATH.into()));
    }
    if let Some(state) = inputs.state {
        add_pack_env(&mut env, state);
    }
    config.insert("Env".into(), json!(env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>()));
    if let Some((user, home)) = &inputs.user {
        config.insert("User".into(), json!(user));
        config.insert("WorkingDir".into(), json!(home));
    }
    if let Some(cmd) = inputs.cmd {
        config.insert("Cmd".into(), json!(cmd));
    }
    let labels = config.entry("Labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    let labels = labels.as_object_mut().expect("checked");
    for (k, v) in inputs.labels {
        labels.insert(k.clone(), json!(v));
    }
    let rootfs = obj.entry("rootfs").or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    if !rootfs["diff_ids"].is_array() {
        *rootfs = json!({"type": "layers", "diff_ids": []});
    }
    let diff_ids = rootfs["diff_ids"].as_array_mut().expect("made an array");
    diff_ids.extend(inputs.layers.iter().map(|l| json!(l.diff_id.as_str())));
    let history = obj.entry("history").or_insert_with(|| json!([]));
    if let Some(history) = history.as_array_mut() {
        history.extend(inputs.layers.iter().map(|l| json!({"created": inputs.created, "created_by": l.created_by, "comment": "aibox-image"})));
    }
    serde_json::to_vec(&doc).expect("config serializes")
}

/// Put each pack's PATH dirs and env into `env`, as `/opt/toolpacks/env.sh` does when sourced
/// (packs in name order, each prepending its dirs; `${PACK_ROOT}` is the `current` link;
/// `${NAME:-default}` takes the value `env` has, else the default).
fn add_pack_env(env: &mut Vec<(String, String)>, state: &State) {
    let get = |env: &[(String, String)], k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    for (name, pack) in &state.packs {
        let root = format!("/opt/toolpacks/{name}/current");
        let mut path: Vec<String> = get(env, "PATH").unwrap_or_default().split(':').filter(|p| !p.is_empty()).map(str::to_owned).collect();
        for dir in pack.path.iter().rev() {
            let dir = format!("{root}/{}", dir.trim_start_matches("./").trim_end_matches('/'));
            if !path.contains(&dir) {
                path.insert(0, dir);
            }
        }
        set(env, "PATH", path.join(":"));
        for (key, value) in &pack.env {
            let Ok(segments) = aibox_schema::env_segments(value) else { continue };
            let mut out = String::new();
            for segment in segments {
                match segment {
                    aibox_schema::EnvSegment::Literal(text) => out.push_str(&text.replace("${PACK_ROOT}", &root)),
                    aibox_schema::EnvSegment::Variable { name, default } => {
                        out.push_str(&get(env, name).filter(|v| !v.is_empty()).or_else(|| default.map(str::to_owned)).unwrap_or_default());
                    }
                }
            }
            set(env, key, out);
        }
    }
}

fn set(env: &mut Vec<(String, String)>, key: &str, value: String) {
    match env.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => env.push((key.to_owned(), value)),
    }
}

/// The image manifest over `config` and `layers`.
pub fn manifest(config: &[u8], layers: Vec<OciDescriptor>, annotations: BTreeMap<String, String>) -> RawManifest {
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_owned()),
        config: OciDescriptor { media_type: OCI_IMAGE_CONFIG.to_owned(), digest: Digest::of(config).to_string(), size: i64::try_from(config.len()).expect("fits"), ..OciDescriptor::default() },
        layers,
        subject: None,
        artifact_type: None,
        annotations: Some(annotations),
    };
    RawManifest::new(serde_json::to_vec(&manifest).expect("manifest serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_env_follows_env_sh() {
        let state: State = serde_json::from_value(json!({"version": 1, "packs": {
            "java": {"version": "21.0.5", "digest": "sha256:a", "store": "s", "signer": "k", "signed_as": "r", "layer": "sha256:b", "size": 1, "entries": 1, "installed_at": "t",
                     "path": ["bin"], "env": {"JAVA_HOME": "${PACK_ROOT}", "PROXY": "${AIBOX_LLM_PROXY:-http://localhost:8443}/v1"}},
            "node": {"version": "20.1.0", "digest": "sha256:c", "store": "s", "signer": "k", "signed_as": "r", "layer": "sha256:d", "size": 1, "entries": 1, "installed_at": "t",
                     "path": ["bin", "lib/node_modules/.bin"]}
        }})).unwrap();
        let mut env = vec![("PATH".to_owned(), "/usr/bin:/bin".to_owned())];
        add_pack_env(&mut env, &state);
        assert_eq!(env[0].1, "/opt/toolpacks/node/current/bin:/opt/toolpacks/node/current/lib/node_modules/.bin:/opt/toolpacks/java/current/bin:/usr/bin:/bin");
        assert!(env.contains(&("JAVA_HOME".into(), "/opt/toolpacks/java/current".into())));
        assert!(env.contains(&("PROXY".into(), "http://localhost:8443/v1".into())));
    }
}
