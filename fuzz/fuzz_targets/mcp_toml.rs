//! The TOML MCP config editor (Codex `config.toml`) on hostile config text; properties in
//! `common/mcp_edit.rs`. The `toml` crate is the independent reader: a document it reads must
//! not be refused, must read the same in the editor, and must still read after aibox's edit.
#![no_main]

#[path = "common/mcp_edit.rs"]
mod common;

use aibox_pkgmgr::mcp::agents::Format;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        toml::Value::Table(t) => Value::Object(t.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

fn read(text: &str) -> Option<Value> {
    let table: toml::Table = toml::from_str(text).ok()?;
    Some(Value::Object(table.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    common::check(Format::Toml, text, read, true);
});
