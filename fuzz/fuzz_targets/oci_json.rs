//! OCI JSON as aibox reads it from a store: image manifests (`RawManifest`, then
//! `OciImageManifest`), `index.json` of layouts and archives (`OciImageIndex`), image configs,
//! a pack's config blob (`PackManifest::from_config_json`), and aibox's own `state.json` and
//! MCP state. Properties: no panic; `RawManifest` digests the exact bytes; whatever parses
//! serializes and re-parses to the same JSON; digests that parse print back as given.
#![no_main]

use aibox_pkgmgr::store::RawManifest;
use aibox_pkgmgr::{Digest, StoreLocation};
use libfuzzer_sys::fuzz_target;
use oci_client::manifest::{OciImageIndex, OciImageManifest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Parse, serialize, parse again: the two serializations are the same JSON.
fn round_trip<T: Serialize + DeserializeOwned>(data: &[u8]) -> Option<T> {
    let parsed: T = serde_json::from_slice(data).ok()?;
    let first = serde_json::to_value(&parsed).expect("a parsed value serializes");
    let again: T = serde_json::from_value(first.clone()).unwrap_or_else(|e| panic!("{} does not re-parse its own JSON: {e}\n{first}", std::any::type_name::<T>()));
    assert_eq!(serde_json::to_value(&again).expect("serializes"), first, "{}", std::any::type_name::<T>());
    Some(parsed)
}

fn digest(s: &str) {
    if let Ok(d) = s.parse::<Digest>() {
        assert_eq!(d.to_string(), s);
        assert_eq!(d.hex().len(), 64);
        assert!(!d.signature_tag().contains('/'));
    }
}

fn size(n: i64) -> u64 {
    // As install, copy and bundle read descriptor sizes.
    u64::try_from(n).unwrap_or(0)
}

fuzz_target!(|data: &[u8]| {
    let store = StoreLocation::Layout("/fuzz".into());
    let raw = RawManifest::new(data.to_vec());
    assert_eq!(raw.digest, Digest::of(data));
    assert_eq!(&raw.bytes[..], data);
    if let Ok(v) = serde_json::from_slice::<Value>(data)
        && let Some(mt) = v.get("mediaType").and_then(Value::as_str)
    {
        assert_eq!(raw.media_type, mt);
    }

    let parsed = raw.image_manifest(&store);
    let typed = round_trip::<OciImageManifest>(data);
    assert_eq!(parsed.is_ok(), typed.is_some());
    if let Ok(m) = parsed {
        for d in std::iter::once(&m.config).chain(&m.layers) {
            digest(&d.digest);
            let _ = size(d.size);
        }
        let _ = m.artifact_type.as_deref();
    }

    if let Some(index) = round_trip::<OciImageIndex>(data) {
        for m in &index.manifests {
            digest(&m.digest);
            let _ = size(m.size);
            // Tags as layouts read them from `org.opencontainers.image.ref.name` = `<name>:<tag>`.
            if let Some(r) = m.annotations.as_ref().and_then(|a| a.get("org.opencontainers.image.ref.name")) {
                let _ = r.split_once(':');
            }
        }
    }

    let _ = round_trip::<oci_client::config::ConfigFile>(data);
    let _ = round_trip::<aibox_pkgmgr::toolpacks::State>(data);
    let _ = round_trip::<aibox_pkgmgr::mcp::state::McpState>(data);
    if let Some(state) = round_trip::<aibox_pkgmgr::toolpacks::State>(data) {
        let written = state.to_json();
        let back: aibox_pkgmgr::toolpacks::State = serde_json::from_slice(&written).expect("state.json as written parses");
        assert_eq!(back, state);
    }

    if let Ok(m) = aibox_schema::PackManifest::from_config_json(data) {
        assert_eq!(aibox_schema::PackManifest::from_config_json(&m.to_canonical_json()).ok().as_ref(), Some(&m));
    }
});
