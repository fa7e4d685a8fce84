//! Shared by the MCP config editor targets (`mcp_json`, `mcp_toml`, `mcp_yaml`): the user's
//! own agent config is hostile input to `aibox_pkgmgr::mcp::document::Document`.
//!
//! Properties, for every container aibox writes into in that format (and a nested one):
//! - no panic, whatever the text;
//! - text the editor refuses is never edited (`Document::parse` is an error; where a strict
//!   independent parser exists, `serde_json` / `toml`, a file it reads as a table is not refused);
//! - the editor reads a file as the independent parser does;
//! - adding aibox's entry gives a file that parses (with the independent parser too: strict
//!   JSON stays strict JSON), reads the entry back as written, and changes nothing else;
//! - removing it again (from the written text, as a later `aibox mcp disable` does, and taking
//!   out a container aibox created) gives back the original file: the same values, and the
//!   same bytes up to the layout changes listed in `layout_free` (exactly the same bytes with
//!   `AIBOX_FUZZ_STRICT_BYTES=1`).

use std::sync::OnceLock;

use aibox_pkgmgr::mcp::Server;
use aibox_pkgmgr::mcp::agents::{Container, Format, profiles};
use aibox_pkgmgr::mcp::document::Document;
use aibox_pkgmgr::mcp::render::render;
use aibox_schema::Transport;
use serde_json::{Value, json};

/// The server name aibox edits (a pack name; Continue's list items carry it in `name`).
pub const NAME: &str = "fuzz-mcp";

/// Reads a config text the way the agent would, independently of the editor; `None` when it
/// does not read it (or there is no independent reader for the format).
pub type Independent = fn(&str) -> Option<Value>;

struct Case {
    container: Container,
    entry: Value,
}

fn servers() -> Vec<Server> {
    let stdio = Server {
        name: NAME.into(),
        version: "1.0.0".into(),
        description: "fuzz: \"quoted\" # not a comment".into(),
        transport: Transport::Stdio,
        command: Some("/opt/toolpacks/fuzz-mcp/current/bin/fuzz-mcp".into()),
        args: ["-r", "/workspace", "a: b", "#x", "- y", "", "yes", "null", "1.5", "'q'", "\"dq\"", "tab\there", "nl\nx", "é ☃", "[1]", "{a: 1}", "~"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        env: [("MODE", "ro"), ("EMPTY", ""), ("COLON", "k: v"), ("NUM", "0x10")].iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        url: None,
        headers: Default::default(),
        startup_timeout: None,
        filesystem_requires: vec!["/workspace".into()],
    };
    let http = Server {
        transport: Transport::Http,
        command: None,
        args: Vec::new(),
        env: Default::default(),
        url: Some("https://mcp.internal/mcp?x=1#frag".into()),
        headers: [("X-Team", "a, b"), ("Accept", "*/*")].iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        startup_timeout: Some(30),
        ..stdio.clone()
    };
    vec![stdio, http]
}

fn same_family(a: Format, b: Format) -> bool {
    matches!((a, b), (Format::Json | Format::Jsonc, Format::Json | Format::Jsonc)) || a == b
}

fn cases(format: Format) -> &'static [Case] {
    static JSON: OnceLock<Vec<Case>> = OnceLock::new();
    static TOML: OnceLock<Vec<Case>> = OnceLock::new();
    static YAML: OnceLock<Vec<Case>> = OnceLock::new();
    let cell = match format {
        Format::Json | Format::Jsonc => &JSON,
        Format::Toml => &TOML,
        Format::Yaml => &YAML,
    };
    cell.get_or_init(|| {
        let mut out: Vec<Case> = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for profile in profiles().iter().filter(|p| same_family(p.format, format)) {
            for server in servers() {
                let Ok(rendered) = render(profile, &server) else { continue };
                let key = format!("{:?}", profile.container);
                // One stdio and one remote entry per container is enough.
                let kind = format!("{key}{:?}", server.transport);
                if seen.contains(&kind) {
                    continue;
                }
                seen.push(kind);
                out.push(Case { container: profile.container, entry: rendered.entry });
            }
        }
        // A nested container, for the parent-walking code paths; the canonical entry shape.
        for server in servers() {
            out.push(Case { container: Container::Map(&["fuzz", "servers"]), entry: server.canonical() });
        }
        assert!(!out.is_empty());
        out
    })
}

fn container_of(value: &Value, container: Container) -> Option<&Value> {
    match container {
        Container::Map(path) => path.iter().try_fold(value, |v, k| v.get(k)),
        Container::NamedList(key) => value.get(key),
    }
}

/// `value` without aibox's entry (and without the container when that leaves it empty).
fn without(mut value: Value, container: Container) -> Value {
    let (parents, last) = match container {
        Container::Map(path) => (&path[..path.len() - 1], path[path.len() - 1]),
        Container::NamedList(key) => (&[][..], key),
    };
    let mut at = &mut value;
    for key in parents {
        match at.get_mut(key) {
            Some(v) => at = v,
            None => return value,
        }
    }
    let empty = match at.get_mut(last) {
        Some(Value::Object(map)) => {
            map.shift_remove(NAME);
            map.is_empty()
        }
        Some(Value::Array(items)) => {
            items.retain(|i| i["name"] != NAME);
            items.is_empty()
        }
        // `extensions:` with nothing under it (YAML): an empty container.
        Some(Value::Null) => true,
        _ => false,
    };
    if empty && let Some(map) = at.as_object_mut() {
        map.shift_remove(last);
    }
    // Parents aibox created on the way to a nested container go too when empty.
    if !parents.is_empty()
        && value.get(parents[0]).is_some_and(|p| p.is_null() || p.as_object().is_some_and(serde_json::Map::is_empty))
        && let Some(map) = value.as_object_mut()
    {
        map.shift_remove(parents[0]);
    }
    value
}

/// Whether the file holds no document at all (JSON: empty or only comments; YAML: no node or
/// a null one): aibox then gives the file a root of its own, and a file it created goes away
/// whole (`created_file`), so bytes are not compared.
fn blank(doc: &Document, before: &Value) -> bool {
    match doc {
        Document::Json { root, .. } => root.value().is_none(),
        Document::Yaml(_) => before.as_object().is_some_and(serde_json::Map::is_empty),
        Document::Toml(_) => false,
    }
}

/// Run every property on `text`.
pub fn check(format: Format, text: &str, independent: Independent, strict_agrees: bool) {
    let indep = independent(text);
    let doc = match Document::parse(format, text) {
        Ok(doc) => doc,
        Err(e) => {
            assert!(
                !(strict_agrees && indep.is_some()),
                "the editor refuses a file the agent reads ({}:{}: {}):\n{text:?}",
                e.line,
                e.column,
                e.message
            );
            return;
        }
    };
    let before = doc.value().unwrap_or_else(|e| panic!("a parsed document has no value: {e}\n{text:?}"));
    assert!(before.is_object(), "{before:?}");
    if let Some(v) = &indep {
        assert_eq!(&before, v, "the editor reads the file differently from the agent:\n{text:?}");
    }
    let _ = doc.text();
    for case in cases(format) {
        round_trip(format, text, &before, indep.as_ref(), case, independent);
    }
}

fn round_trip(format: Format, text: &str, before: &Value, indep: Option<&Value>, case: &Case, independent: Independent) {
    let Case { container, entry } = case;
    let container = *container;
    let mut doc = Document::parse(format, text).expect("parsed before");
    let was_blank = blank(&doc, before);
    let had_container = container_of(before, container).is_some();
    let existing = match doc.get(container, NAME) {
        Ok(e) => e,
        // The container has a shape aibox does not edit: reported, file left alone.
        Err(_) => return,
    };
    // Add (or replace the file's own entry of that name, as `regenerate` does).
    if doc.set(container, NAME, entry).is_err() {
        return;
    }
    let added = doc.text();
    let show = || format!("container {container:?}\n--- before\n{text}\n--- after\n{added}\n--- (debug)\n{text:?}\n{added:?}");
    let re = Document::parse(format, &added).unwrap_or_else(|e| panic!("the edited file does not parse ({}:{}: {})\n{}", e.line, e.column, e.message, show()));
    assert_eq!(re.get(container, NAME).ok().flatten().as_ref(), Some(entry), "the entry does not read back as written\n{}", show());
    let after = re.value().expect("value");
    assert_eq!(without(before.clone(), container), without(after.clone(), container), "the edit changed other parts of the file\n{}", show());
    if let Some(indep_before) = indep {
        let indep_after = independent(&added).unwrap_or_else(|| panic!("the agent's own parser cannot read the edited file\n{}", show()));
        assert_eq!(container_of(&indep_after, container).and_then(|c| find(c, container)), Some(entry), "the agent reads another entry\n{}", show());
        assert_eq!(without(indep_before.clone(), container), without(indep_after, container), "the agent sees other parts changed\n{}", show());
    }
    if existing.is_some() {
        return;
    }
    // Take it out again, from the written text, as a later aibox run does.
    let mut doc = re;
    assert!(doc.remove(container, NAME).unwrap_or_else(|e| panic!("remove failed: {e}\n{}", show())), "entry not found for removal\n{}", show());
    if !had_container {
        doc.remove_container_if_empty(container).unwrap_or_else(|e| panic!("remove_container_if_empty failed: {e}\n{}", show()));
    }
    let removed = doc.text();
    let back = Document::parse(format, &removed).unwrap_or_else(|e| panic!("the file after removal does not parse ({})\n{}\n--- removed\n{removed:?}", e.message, show()));
    if was_blank {
        return;
    }
    // aibox's containers are one key deep; the parent of the nested test container, when the
    // edit created it, stays behind as an empty table: values are compared then, not bytes.
    let created_parent = matches!(container, Container::Map(p) if p.len() > 1 && before.get(p[0]).is_none_or(Value::is_null));
    // A null container (`extensions:` in YAML) comes back as an empty one: values compare equal.
    let null_container = container_of(before, container).is_some_and(Value::is_null);
    assert_eq!(&without(back.value().expect("value"), container), &without(before.clone(), container), "removal does not give the file back\n{}\n--- removed\n{removed:?}", show());
    if !created_parent && !null_container {
        assert_eq!(layout_free(format, &removed), layout_free(format, text), "removal does not give the original file back\n{}\n--- removed\n{removed}\n{removed:?}", show());
        if strict_bytes() {
            assert_eq!(removed, text, "removal does not give the original bytes back\n{}\n--- removed\n{removed}", show());
        }
    }
}

/// `AIBOX_FUZZ_STRICT_BYTES=1`: also demand the exact original bytes after add + remove.
/// Off by default: the editors still change layout in known ways (see `layout_free`).
fn strict_bytes() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("AIBOX_FUZZ_STRICT_BYTES").is_some_and(|v| !v.is_empty() && v != "0"))
}

/// The text without the layout changes the editors are known to make on add + remove: CRLF
/// (or a lone CR) written as LF (toml_edit, jsonc-parser), a final newline added (yaml-edit),
/// a one-line JSON object spread over lines and a trailing comma dropped (jsonc-parser). Everything else (keys, values, their order and spelling,
/// comments, escapes, commas) must come back as it was.
fn layout_free(format: Format, text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let text = text.trim_end_matches('\n');
    match format {
        Format::Json | Format::Jsonc => json_without_whitespace(text),
        Format::Toml | Format::Yaml => text.to_owned(),
    }
}

/// JSON(C) with the whitespace between tokens and trailing commas taken out (strings and
/// comments kept as is).
fn json_without_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push(c);
                let mut escaped = false;
                for c in chars.by_ref() {
                    out.push(c);
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                out.push(c);
                for c in chars.by_ref() {
                    out.push(c);
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                out.push(c);
                let mut star = false;
                for c in chars.by_ref() {
                    out.push(c);
                    if star && c == '/' {
                        break;
                    }
                    star = c == '*';
                }
            }
            c if c.is_whitespace() => {}
            // A trailing comma goes when jsonc-parser appends after it and removes again.
            '}' | ']' => {
                if out.ends_with(',') {
                    out.pop();
                }
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn find(c: &Value, container: Container) -> Option<&Value> {
    match container {
        Container::Map(_) => c.get(NAME),
        Container::NamedList(_) => c.as_array()?.iter().find(|i| i["name"] == NAME),
    }
}

/// Unused in some targets.
#[allow(dead_code)]
pub fn json_object(text: &str) -> Option<Value> {
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    if body.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r')) {
        return Some(json!({}));
    }
    serde_json::from_str::<Value>(body).ok().filter(Value::is_object)
}
