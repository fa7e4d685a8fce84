//! The YAML MCP config editor (Goose `config.yaml`, Continue `config.yaml`) on hostile config
//! text; properties in `common/mcp_edit.rs`. `serde-saphyr` (strict) is the reader the editor
//! itself checks with; it must read the file the same before and after aibox's edit (apart from
//! aibox's entry).
#![no_main]

#[path = "common/mcp_edit.rs"]
mod common;

use aibox_pkgmgr::mcp::agents::Format;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn read(text: &str) -> Option<Value> {
    match serde_saphyr::from_str::<Option<Value>>(text).ok()? {
        None => Some(Value::Object(serde_json::Map::new())),
        Some(v) => v.is_object().then_some(v),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // serde-saphyr reading a mapping does not mean yaml-edit can edit it: refusals are allowed.
    common::check(Format::Yaml, text, read, false);
});
