//! The JSON Schema of `pack.yaml`, generated from [`PackManifest`](crate::PackManifest).
//!
//! The committed copy lives in `registry-schema/schema/pack.schema.json`; a test fails when it
//! differs from what the types generate (`AIBOX_UPDATE_SCHEMA=1 cargo test -p aibox-schema`
//! rewrites it).

/// The schema `$id`.
pub const SCHEMA_ID: &str = "https://aibox.dev/schema/pack.schema.json";

/// The JSON Schema of `pack.yaml`, pretty-printed with a trailing newline.
pub fn pack_schema_json() -> String {
    let mut schema = schemars::schema_for!(crate::PackManifest);
    schema.insert("$id".into(), SCHEMA_ID.into());
    let mut text = serde_json::to_string_pretty(&schema).expect("schema serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn committed_schema_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/pack.schema.json");
        let generated = super::pack_schema_json();
        if std::env::var_os("AIBOX_UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is stale: run `AIBOX_UPDATE_SCHEMA=1 cargo test -p aibox-schema` and commit it",
            path.display()
        );
    }
}
