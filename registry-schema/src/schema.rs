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

/// A Markdown reference of every `pack.yaml` field, generated from the schema so it cannot drift
/// (committed as `docs/pack-schema.md`).
pub fn pack_schema_markdown() -> String {
    let schema: serde_json::Value = serde_json::from_str(&pack_schema_json()).expect("schema is JSON");
    let mut out = String::from(
        "# `pack.yaml` reference\n\n\
         Generated from the types in `registry-schema/` (`AIBOX_UPDATE_SCHEMA=1 cargo test -p aibox-schema`);\n\
         the JSON Schema is `registry-schema/schema/pack.schema.json` (`aibox pack schema` prints it).\n\
         Unknown fields are errors. YAML is read with serde-saphyr.\n\n\
         | field | type | required | description |\n| --- | --- | --- | --- |\n",
    );
    let required: Vec<&str> = schema["required"].as_array().map(|r| r.iter().filter_map(|v| v.as_str()).collect()).unwrap_or_default();
    rows(&schema, &schema, "", &required, &mut out);
    out
}

fn rows(root: &serde_json::Value, object: &serde_json::Value, prefix: &str, required: &[&str], out: &mut String) {
    let Some(props) = object["properties"].as_object() else { return };
    for (name, prop) in props {
        let path = format!("{prefix}{name}");
        let target = resolve(root, prop);
        let description = prop["description"].as_str().or_else(|| target["description"].as_str()).unwrap_or("").replace('\n', " ").replace('|', "\\|");
        let default = prop.get("default").map(|d| format!(" Default: `{d}`.")).unwrap_or_default();
        let req = if required.contains(&name.as_str()) { "yes" } else { "" };
        out.push_str(&format!("| `{path}` | {} | {req} | {description}{default} |\n", type_name(root, prop)));
        let (nested, nested_path) = if target["type"] == "array" { (resolve(root, &target["items"]), format!("{path}[].")) } else { (target, format!("{path}.")) };
        if nested["type"] == "object" && nested.get("properties").is_some() {
            let required: Vec<&str> = nested["required"].as_array().map(|r| r.iter().filter_map(|v| v.as_str()).collect()).unwrap_or_default();
            rows(root, nested, &nested_path, &required, out);
        }
    }
}

/// Follow a `$ref` (also inside an `anyOf` with `null`, how optional fields are written).
fn resolve<'a>(root: &'a serde_json::Value, prop: &'a serde_json::Value) -> &'a serde_json::Value {
    if let Some(any) = prop["anyOf"].as_array()
        && let Some(inner) = any.iter().find(|v| v.get("$ref").is_some())
    {
        return resolve(root, inner);
    }
    match prop["$ref"].as_str().and_then(|r| r.strip_prefix("#/$defs/")) {
        Some(def) => &root["$defs"][def],
        None => prop,
    }
}

fn type_name(root: &serde_json::Value, prop: &serde_json::Value) -> String {
    let target = resolve(root, prop);
    if let Some(values) = target["enum"].as_array() {
        return values.iter().filter_map(|v| v.as_str()).map(|v| format!("`{v}`")).collect::<Vec<_>>().join(" \\| ");
    }
    if let Some(one_of) = target["oneOf"].as_array() {
        return one_of.iter().filter_map(|v| v["const"].as_str().or_else(|| v["enum"][0].as_str())).map(|v| format!("`{v}`")).collect::<Vec<_>>().join(" \\| ");
    }
    match &target["type"] {
        serde_json::Value::String(t) if t == "array" => match type_name(root, &target["items"]).as_str() {
            "object" => "list of objects".into(),
            item => format!("list of {item}"),
        },
        serde_json::Value::String(t) if t == "object" && target.get("additionalProperties").is_some_and(serde_json::Value::is_object) => {
            format!("map of {}", type_name(root, &target["additionalProperties"]))
        }
        serde_json::Value::String(t) => t.clone(),
        serde_json::Value::Array(ts) => ts.iter().filter_map(|t| t.as_str()).filter(|t| *t != "null").collect::<Vec<_>>().join(" or "),
        _ => "string".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Fail when the committed copy of a generated file differs (`AIBOX_UPDATE_SCHEMA=1` rewrites it).
    fn check_committed(relative: &str, generated: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
        if std::env::var_os("AIBOX_UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(committed == generated, "{} is stale: run `AIBOX_UPDATE_SCHEMA=1 cargo test -p aibox-schema` and commit it", path.display());
    }

    #[test]
    fn committed_schema_is_current() {
        check_committed("schema/pack.schema.json", &super::pack_schema_json());
    }

    #[test]
    fn committed_reference_is_current() {
        check_committed("../docs/pack-schema.md", &super::pack_schema_markdown());
    }
}
