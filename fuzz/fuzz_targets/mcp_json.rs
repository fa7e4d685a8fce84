//! The JSON/JSONC MCP config editor (Claude Code, Cursor, VS Code, Zed, opencode, ...) on hostile
//! config text; properties in `common/mcp_edit.rs`. Strict JSON is also read with `serde_json`
//! (as agents read it with `JSON.parse`): an object it reads must not be refused, must read the
//! same in the editor, and must still be strict JSON after aibox's edit.
#![no_main]

#[path = "common/mcp_edit.rs"]
mod common;

use aibox_pkgmgr::mcp::agents::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    common::check(Format::Jsonc, text, common::json_object, true);
});
