//! Surgical edits of agent config files: JSON/JSONC through `jsonc-parser`'s CST (comments,
//! trailing commas, indentation, line endings and key order kept), TOML through `toml_edit`,
//! YAML through `yaml-edit` (comments kept), checked by `serde-saphyr`, which is strict where
//! `yaml-edit` is lenient. Only the named entry under the container changes; every other byte
//! stays. Entries go in and come out as JSON values.

use serde_json::Value;

use super::agents::{Container, Format};

/// A file that does not parse: where and why.
#[derive(Debug, Clone)]
pub struct ParseError {
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// What the parser said.
    pub message: String,
}

/// A parsed config file, ready for edits.
pub enum Document {
    /// JSON or JSONC; `bom` is put back on output.
    Json {
        /// The CST.
        root: jsonc_parser::cst::CstRootNode,
        /// Whether the file started with a UTF-8 BOM.
        bom: bool,
    },
    /// TOML.
    Toml(toml_edit::DocumentMut),
    /// YAML.
    Yaml(yaml_edit::YamlFile),
}

impl Document {
    /// Parse `text` as `format`. Empty (or whitespace-only) text is an empty document.
    pub fn parse(format: Format, text: &str) -> Result<Self, ParseError> {
        match format {
            Format::Json | Format::Jsonc => {
                let (bom, body) = text.strip_prefix('\u{feff}').map_or((false, text), |t| (true, t));
                let options = jsonc_parser::ParseOptions::default();
                let root = jsonc_parser::cst::CstRootNode::parse(body, &options)
                    .map_err(|e| ParseError { line: e.line_display(), column: e.column_display(), message: e.kind().to_string() })?;
                if let Some(value) = root.value()
                    && value.as_object().is_none()
                {
                    return Err(ParseError { line: 1, column: 1, message: "the file is not a JSON object".into() });
                }
                Ok(Self::Json { root, bom })
            }
            Format::Toml => text.parse::<toml_edit::DocumentMut>().map(Self::Toml).map_err(|e| {
                let (line, column) = e.span().map_or((1, 1), |span| line_column(text, span.start));
                ParseError { line, column, message: e.message().to_owned() }
            }),
            Format::Yaml => {
                let strict = serde_saphyr::from_str::<Option<Value>>(text).map_err(|e| {
                    let (line, column) = e.location().map_or((1, 1), |l| (to_usize(l.line()), to_usize(l.column())));
                    ParseError { line, column, message: e.to_string().lines().next().unwrap_or_default().to_owned() }
                })?;
                if strict.as_ref().is_some_and(|v| !v.is_object()) {
                    return Err(ParseError { line: 1, column: 1, message: "the file is not a YAML mapping".into() });
                }
                let parsed = yaml_edit::Parse::<yaml_edit::YamlFile>::parse_yaml(text);
                if let Some(e) = parsed.positioned_errors().first() {
                    let at = e.start_position(text);
                    return Err(ParseError { line: at.line, column: at.column, message: e.message.clone() });
                }
                let file = parsed.tree();
                if file.documents().count() > 1 {
                    return Err(ParseError { line: 1, column: 1, message: "more than one YAML document; aibox edits single-document files only".into() });
                }
                Ok(Self::Yaml(file))
            }
        }
    }

    /// The text of the document now.
    pub fn text(&self) -> String {
        match self {
            Self::Json { root, bom } => format!("{}{root}", if *bom { "\u{feff}" } else { "" }),
            Self::Toml(doc) => doc.to_string(),
            Self::Yaml(file) => file.to_string(),
        }
    }

    /// The entry `name` under `container`, as JSON.
    pub fn get(&self, container: Container, name: &str) -> Result<Option<Value>, String> {
        match self {
            Self::Json { root, .. } => {
                let Container::Map(path) = container else { return Err("a JSON config keeps servers in a map".into()) };
                let Some(mut object) = root.object_value() else { return Ok(None) };
                for key in path {
                    match json_prop(&object, key)? {
                        None => return Ok(None),
                        Some(prop) => object = prop.value().and_then(|v| v.as_object()).ok_or_else(|| format!("`{}` is not an object", path.join(".")))?,
                    }
                }
                Ok(json_prop(&object, name)?.and_then(|p| p.to_serde_value()))
            }
            Self::Toml(doc) => {
                let Container::Map(path) = container else { return Err("a TOML config keeps servers in tables".into()) };
                let mut table: &dyn toml_edit::TableLike = doc.as_table();
                for key in path {
                    match table.get(key) {
                        None => return Ok(None),
                        Some(item) => table = item.as_table_like().ok_or_else(|| format!("`{}` is not a table", path.join(".")))?,
                    }
                }
                Ok(table.get(name).map(toml_to_json))
            }
            Self::Yaml(file) => {
                let value: Option<Value> = serde_saphyr::from_str(&file.to_string()).map_err(|e| e.to_string())?;
                let Some(value) = value else { return Ok(None) };
                match container {
                    Container::Map(path) => {
                        let mut at = &value;
                        for key in path {
                            match at.get(key) {
                                None | Some(Value::Null) => return Ok(None),
                                Some(v) if v.is_object() => at = v,
                                Some(_) => return Err(format!("`{}` is not a mapping", path.join("."))),
                            }
                        }
                        Ok(at.get(name).cloned())
                    }
                    Container::NamedList(key) => match value.get(key) {
                        None | Some(Value::Null) => Ok(None),
                        Some(Value::Array(items)) => Ok(items.iter().find(|i| i["name"] == name).cloned()),
                        Some(_) => Err(format!("`{key}` is not a list")),
                    },
                }
            }
        }
    }

    /// Insert or replace the entry `name` under `container` (created when missing).
    pub fn set(&mut self, container: Container, name: &str, entry: &Value) -> Result<(), String> {
        match self {
            Self::Json { root, .. } => {
                let Container::Map(path) = container else { return Err("a JSON config keeps servers in a map".into()) };
                let mut object = root.object_value_or_create().ok_or("the file is not a JSON object")?;
                for key in path {
                    json_prop(&object, key)?;
                    object = object.object_value_or_create(key).ok_or_else(|| format!("`{}` is not an object", path.join(".")))?;
                }
                match json_prop(&object, name)? {
                    Some(prop) => prop.set_value(to_cst(entry)),
                    None => {
                        object.append(name, to_cst(entry));
                    }
                }
                Ok(())
            }
            Self::Toml(doc) => {
                let Container::Map(path) = container else { return Err("a TOML config keeps servers in tables".into()) };
                let mut table = doc.as_table_mut();
                for key in path {
                    if table.get(key).is_none() {
                        let mut t = toml_edit::Table::new();
                        t.set_implicit(true);
                        table.insert(key, toml_edit::Item::Table(t));
                    }
                    table = table.get_mut(key).and_then(toml_edit::Item::as_table_mut).ok_or_else(|| {
                        format!("`{}` is not a table of the form [{}.NAME] (aibox does not rewrite inline tables)", path.join("."), path.join("."))
                    })?;
                }
                match table.get_mut(name) {
                    // Update key by key: the table keeps its place and the comments around it.
                    Some(toml_edit::Item::Table(existing)) => {
                        let object = entry.as_object().ok_or("an entry is a table")?;
                        let stale: Vec<String> = existing.iter().map(|(k, _)| k.to_owned()).filter(|k| !object.contains_key(k)).collect();
                        for key in stale {
                            existing.remove(&key);
                        }
                        for (k, v) in object {
                            let value = json_to_toml_value(v);
                            match existing.get_mut(k).and_then(toml_edit::Item::as_value_mut) {
                                Some(old) if toml_value_to_json(old) == *v => {}
                                Some(old) => {
                                    let decor = old.decor().clone();
                                    *old = value;
                                    *old.decor_mut() = decor;
                                }
                                None => {
                                    existing.insert(k, toml_edit::Item::Value(value));
                                }
                            }
                        }
                    }
                    Some(_) => return Err(format!("`{}.{name}` is not a table of the form [{}.{name}]", path.join("."), path.join("."))),
                    None => {
                        table.insert(name, json_to_toml_table(entry));
                    }
                }
                Ok(())
            }
            Self::Yaml(file) => match container {
                Container::Map(path) => {
                    let mut mapping = yaml_root(file)?;
                    for key in path {
                        mapping = yaml_child_mapping(&mapping, key)?;
                    }
                    let object = entry.as_object().ok_or("an entry is a mapping")?;
                    match mapping.get_mapping(name) {
                        // Update in place, key by key: comments on unchanged keys stay.
                        Some(existing) => update_yaml_mapping(&existing, object),
                        None => mapping.set(name, yaml_mapping(object)),
                    }
                    Ok(())
                }
                Container::NamedList(key) => {
                    let list = yaml_child_list(&yaml_root(file)?, key)?;
                    let object = entry.as_object().ok_or("an entry is a mapping")?;
                    match yaml_find(&list, name).and_then(|i| list.values().nth(i)).and_then(|n| n.as_mapping().cloned()) {
                        Some(existing) => update_yaml_mapping(&existing, object),
                        None => list.push(yaml_mapping(object)),
                    }
                    Ok(())
                }
            },
        }
    }

    /// Set the top-level key `name` of a YAML document to `value` (a scalar or a list too, as
    /// `config.yaml` keys are), keeping everything else.
    pub fn set_top_level(&mut self, name: &str, value: &Value) -> Result<(), String> {
        match self {
            Self::Yaml(file) => {
                set_yaml(&yaml_root(file)?, name, value);
                Ok(())
            }
            Self::Json { .. } | Self::Toml(_) => Err("only YAML documents take top-level values here".into()),
        }
    }

    /// The whole document as JSON, for comparing what an edit changed.
    pub fn value(&self) -> Result<Value, String> {
        let empty = || Value::Object(serde_json::Map::new());
        match self {
            Self::Json { root, .. } => Ok(root.value().and_then(|v| v.to_serde_value()).unwrap_or_else(empty)),
            Self::Toml(doc) => Ok(toml_to_json(doc.as_item())),
            Self::Yaml(file) => Ok(serde_saphyr::from_str::<Option<Value>>(&file.to_string()).map_err(|e| e.to_string())?.unwrap_or_else(empty)),
        }
    }

    /// Take the container out when it holds nothing (aibox created it and took its last entry).
    pub fn remove_container_if_empty(&mut self, container: Container) -> Result<bool, String> {
        let (parents, last) = match container {
            Container::Map(path) => (&path[..path.len() - 1], path[path.len() - 1]),
            Container::NamedList(key) => (&[][..], key),
        };
        match self {
            Self::Json { root, .. } => {
                let Some(mut object) = root.object_value() else { return Ok(false) };
                for key in parents {
                    let Some(o) = object.object_value(key) else { return Ok(false) };
                    object = o;
                }
                match object.get(last) {
                    Some(prop) if prop.value().and_then(|v| v.as_object()).is_some_and(|o| o.properties().is_empty()) => {
                        prop.remove();
                        Ok(true)
                    }
                    _ => Ok(false),
                }
            }
            Self::Toml(doc) => {
                let mut table = doc.as_table_mut();
                for key in parents {
                    let Some(t) = table.get_mut(key).and_then(toml_edit::Item::as_table_mut) else { return Ok(false) };
                    table = t;
                }
                if table.get(last).and_then(toml_edit::Item::as_table_like).is_some_and(toml_edit::TableLike::is_empty) {
                    table.remove(last);
                    return Ok(true);
                }
                Ok(false)
            }
            Self::Yaml(file) => {
                let mut mapping = yaml_root(file)?;
                for key in parents {
                    let Some(m) = mapping.get_mapping(key) else { return Ok(false) };
                    mapping = m;
                }
                let empty = match mapping.get(last) {
                    Some(yaml_edit::YamlNode::Mapping(m)) => m.keys().next().is_none(),
                    Some(yaml_edit::YamlNode::Sequence(s)) => s.is_empty(),
                    _ => false,
                };
                if empty {
                    mapping.remove(last);
                }
                Ok(empty)
            }
        }
    }

    /// Remove the entry `name` under `container`; `false` when it was not there.
    pub fn remove(&mut self, container: Container, name: &str) -> Result<bool, String> {
        if self.get(container, name)?.is_none() {
            return Ok(false);
        }
        match self {
            Self::Json { root, .. } => {
                let Container::Map(path) = container else { return Ok(false) };
                let mut object = root.object_value().ok_or("the file is not a JSON object")?;
                for key in path {
                    object = object.object_value(key).ok_or("container vanished")?;
                }
                if let Some(prop) = object.get(name) {
                    prop.remove();
                }
            }
            Self::Toml(doc) => {
                let Container::Map(path) = container else { return Ok(false) };
                let mut table: &mut dyn toml_edit::TableLike = doc.as_table_mut();
                for key in path {
                    table = table.get_mut(key).and_then(toml_edit::Item::as_table_like_mut).ok_or("container vanished")?;
                }
                table.remove(name);
            }
            Self::Yaml(file) => match container {
                Container::Map(path) => {
                    let mut mapping = yaml_root(file)?;
                    for key in path {
                        mapping = mapping.get_mapping(key).ok_or("container vanished")?;
                    }
                    mapping.remove(name);
                }
                Container::NamedList(key) => {
                    let list = yaml_root(file)?.get_sequence(key).ok_or("container vanished")?;
                    if let Some(i) = yaml_find(&list, name) {
                        list.remove(i);
                    }
                }
            },
        }
        Ok(true)
    }
}

/// The property `key` of a JSON object. With the key twice, agents read the last one and the
/// CST would edit the first: an error, never an edit the agent does not see.
fn json_prop(object: &jsonc_parser::cst::CstObject, key: &str) -> Result<Option<jsonc_parser::cst::CstObjectProp>, String> {
    if object.properties().iter().filter(|p| p.decoded_name().as_deref() == Some(key)).count() > 1 {
        return Err(format!("`{key}` appears more than once in the object; remove the duplicate"));
    }
    Ok(object.get(key))
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn to_cst(value: &Value) -> jsonc_parser::cst::CstInputValue {
    use jsonc_parser::cst::CstInputValue as V;
    match value {
        Value::Null => V::Null,
        Value::Bool(b) => V::Bool(*b),
        Value::Number(n) => V::Number(n.to_string()),
        Value::String(s) => V::String(s.clone()),
        Value::Array(items) => V::Array(items.iter().map(to_cst).collect()),
        Value::Object(map) => V::Object(map.iter().map(|(k, v)| (k.clone(), to_cst(v))).collect()),
    }
}

fn json_to_toml_value(value: &Value) -> toml_edit::Value {
    match value {
        Value::Null => toml_edit::Value::from(""),
        Value::Bool(b) => toml_edit::Value::from(*b),
        Value::Number(n) => n.as_i64().map_or_else(|| toml_edit::Value::from(n.as_f64().unwrap_or_default()), toml_edit::Value::from),
        Value::String(s) => toml_edit::Value::from(s.as_str()),
        Value::Array(items) => toml_edit::Value::Array(items.iter().map(json_to_toml_value).collect()),
        Value::Object(map) => {
            let mut table = toml_edit::InlineTable::new();
            for (k, v) in map {
                table.insert(k, json_to_toml_value(v));
            }
            toml_edit::Value::InlineTable(table)
        }
    }
}

/// An entry as a standard table (`[mcp_servers.NAME]`); its maps (`env`) as inline tables.
fn json_to_toml_table(value: &Value) -> toml_edit::Item {
    let mut table = toml_edit::Table::new();
    for (k, v) in value.as_object().into_iter().flatten() {
        table.insert(k, toml_edit::Item::Value(json_to_toml_value(v)));
    }
    toml_edit::Item::Table(table)
}

fn toml_to_json(item: &toml_edit::Item) -> Value {
    match item {
        toml_edit::Item::None => Value::Null,
        toml_edit::Item::Value(v) => toml_value_to_json(v),
        toml_edit::Item::Table(t) => Value::Object(t.iter().map(|(k, v)| (k.to_owned(), toml_to_json(v))).collect()),
        toml_edit::Item::ArrayOfTables(a) => Value::Array(a.iter().map(|t| Value::Object(t.iter().map(|(k, v)| (k.to_owned(), toml_to_json(v))).collect())).collect()),
    }
}

fn toml_value_to_json(value: &toml_edit::Value) -> Value {
    match value {
        toml_edit::Value::String(s) => Value::String(s.value().clone()),
        toml_edit::Value::Integer(i) => Value::from(*i.value()),
        toml_edit::Value::Float(f) => Value::from(*f.value()),
        toml_edit::Value::Boolean(b) => Value::Bool(*b.value()),
        toml_edit::Value::Datetime(d) => Value::String(d.value().to_string()),
        toml_edit::Value::Array(a) => Value::Array(a.iter().map(toml_value_to_json).collect()),
        toml_edit::Value::InlineTable(t) => Value::Object(t.iter().map(|(k, v)| (k.to_owned(), toml_value_to_json(v))).collect()),
    }
}

fn yaml_root(file: &yaml_edit::YamlFile) -> Result<yaml_edit::Mapping, String> {
    let doc = file.ensure_document();
    if doc.as_mapping().is_none() {
        if doc.as_sequence().is_some() || doc.as_scalar().is_some_and(|s| !s.is_null()) {
            return Err("the file is not a YAML mapping".into());
        }
        // An empty document: give it a mapping through its first key.
        doc.set("__aibox_new__", yaml_edit::Mapping::new());
        let root = doc.as_mapping().ok_or("cannot create a YAML mapping")?;
        root.remove("__aibox_new__");
        return Ok(root);
    }
    doc.as_mapping().ok_or_else(|| "the file is not a YAML mapping".into())
}

fn yaml_child_mapping(parent: &yaml_edit::Mapping, key: &str) -> Result<yaml_edit::Mapping, String> {
    match parent.get(key) {
        Some(yaml_edit::YamlNode::Mapping(m)) => return Ok(m),
        Some(yaml_edit::YamlNode::Scalar(s)) if s.is_null() => {}
        None => {}
        Some(_) => return Err(format!("`{key}` is not a mapping")),
    }
    parent.set(key, yaml_edit::Mapping::new());
    parent.get_mapping(key).ok_or_else(|| format!("cannot create `{key}`"))
}

fn yaml_child_list(parent: &yaml_edit::Mapping, key: &str) -> Result<yaml_edit::Sequence, String> {
    match parent.get(key) {
        Some(yaml_edit::YamlNode::Sequence(s)) => return Ok(s),
        Some(yaml_edit::YamlNode::Scalar(s)) if s.is_null() => {}
        None => {}
        Some(_) => return Err(format!("`{key}` is not a list")),
    }
    parent.set(key, yaml_edit::Sequence::new());
    parent.get_sequence(key).ok_or_else(|| format!("cannot create `{key}`"))
}

fn yaml_find(list: &yaml_edit::Sequence, name: &str) -> Option<usize> {
    list.values().position(|item| {
        item.as_mapping().and_then(|m| m.get("name")).and_then(|n| n.as_scalar().map(yaml_edit::Scalar::as_string)).as_deref() == Some(name)
    })
}

fn update_yaml_mapping(existing: &yaml_edit::Mapping, object: &serde_json::Map<String, Value>) {
    let stale: Vec<String> = existing.keys().filter_map(|k| k.as_scalar().map(yaml_edit::Scalar::as_string)).filter(|k| !object.contains_key(k)).collect();
    for key in stale {
        existing.remove(key.as_str());
    }
    for (k, v) in object {
        set_yaml(existing, k, v);
    }
}

fn yaml_mapping(object: &serde_json::Map<String, Value>) -> yaml_edit::Mapping {
    let mapping = yaml_edit::Mapping::new();
    for (k, v) in object {
        set_yaml(&mapping, k, v);
    }
    mapping
}

fn yaml_sequence(items: &[Value]) -> yaml_edit::Sequence {
    let seq = yaml_edit::Sequence::new();
    for v in items {
        match v {
            Value::Null => seq.push(None::<&str>),
            Value::Bool(b) => seq.push(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => seq.push(i),
                None => seq.push(n.as_f64().unwrap_or_default()),
            },
            Value::String(s) => seq.push(yaml_string(s)),
            Value::Array(a) => seq.push(yaml_sequence(a)),
            Value::Object(o) => seq.push(yaml_mapping(o)),
        }
    }
    seq
}

fn set_yaml(mapping: &yaml_edit::Mapping, key: &str, value: &Value) {
    match value {
        Value::Null => mapping.set(key, None::<&str>),
        Value::Bool(b) => mapping.set(key, *b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => mapping.set(key, i),
            None => mapping.set(key, n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => mapping.set(key, yaml_string(s)),
        Value::Array(a) => mapping.set(key, yaml_sequence(a)),
        Value::Object(o) => mapping.set(key, yaml_mapping(o)),
    }
}

/// A string scalar that every YAML reader reads back as this string: plain when a strict
/// parser agrees, else single-quoted (double-quoted for control characters).
fn yaml_string(s: &str) -> yaml_edit::ScalarValue {
    let plain_ok = !s.is_empty()
        && !s.contains(['\t', '\n', '\r', '=', '#'])
        && serde_saphyr::from_str::<Value>(&format!("k: {s}")).is_ok_and(|v| v["k"] == Value::String(s.to_owned()));
    if plain_ok {
        yaml_edit::ScalarValue::string(s)
    } else if s.chars().any(char::is_control) {
        yaml_edit::ScalarValue::double_quoted(s)
    } else {
        yaml_edit::ScalarValue::single_quoted(s)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const MAP: Container = Container::Map(&["mcpServers"]);

    fn edit(format: Format, container: Container, text: &str, name: &str, entry: &Value) -> String {
        let mut doc = Document::parse(format, text).unwrap();
        doc.set(container, name, entry).unwrap();
        let out = doc.text();
        assert_eq!(Document::parse(format, &out).unwrap().get(container, name).unwrap().as_ref(), Some(entry), "{out}");
        out
    }

    #[test]
    fn json_keeps_bom_crlf_tabs_and_comments() {
        let text = "\u{feff}{\r\n\t// mine\r\n\t\"mcpServers\": {\r\n\t\t\"a\": {\"command\": \"x\"}\r\n\t}\r\n}\r\n";
        let out = edit(Format::Json, MAP, text, "b", &json!({"command": "y", "args": []}));
        assert!(out.starts_with("\u{feff}{\r\n\t// mine\r\n") && out.contains("\r\n\t\t\"b\": {") && !out.replace("\r\n", "").contains('\n'), "{out:?}");
        let mut doc = Document::parse(Format::Json, &out).unwrap();
        assert!(doc.remove(MAP, "b").unwrap());
        assert_eq!(doc.text(), text, "remove gives the bytes back");
    }

    #[test]
    fn empty_files_get_a_container() {
        for format in [Format::Json, Format::Toml, Format::Yaml] {
            let container = if format == Format::Toml { Container::Map(&["mcp_servers"]) } else { MAP };
            let out = edit(format, container, "", "s", &json!({"command": "/bin/s", "args": ["-r", "a: b"], "env": {"K": "yes"}}));
            assert!(!out.is_empty());
        }
        let out = edit(Format::Yaml, Container::NamedList("mcpServers"), "name: x\n", "s", &json!({"name": "s", "command": "c"}));
        assert!(out.starts_with("name: x\n"), "{out}");
    }

    #[test]
    fn wrong_shapes_and_bad_syntax_are_errors() {
        let err = Document::parse(Format::Toml, "a = 1\n[b\n").err().unwrap();
        assert_eq!((err.line, err.column > 0), (2, true));
        let err = Document::parse(Format::Json, "{\n  \"a\": 1,,\n}").err().unwrap();
        assert_eq!(err.line, 2);
        let err = Document::parse(Format::Yaml, "a: 1\n  b: 2\n").err().unwrap();
        assert!(err.line > 0, "{}", err.message);
        assert!(Document::parse(Format::Json, "[1]").is_err(), "not an object");
        let mut doc = Document::parse(Format::Json, "{\"mcpServers\": []}").unwrap();
        assert!(doc.set(MAP, "s", &json!({})).is_err());
        let mut doc = Document::parse(Format::Toml, "mcp_servers = { a = { command = \"x\" } }\n").unwrap();
        assert!(doc.set(Container::Map(&["mcp_servers"]), "s", &json!({"command": "y"})).unwrap_err().contains("inline"));
    }

    #[test]
    fn json_duplicate_keys_on_the_path_are_errors() {
        // Found by fuzzing (fuzz/fuzz_targets/mcp_json.rs): with `mcpServers` twice, the entry
        // went into the first one, while agents (JSON.parse) read the last.
        let text = "{\"mcpServers\": {}, \"x\": 1, \"mcpServers\": {\"a\": {\"command\": \"a\"}}}";
        let mut doc = Document::parse(Format::Json, text).unwrap();
        assert!(doc.get(MAP, "s").unwrap_err().contains("more than once"));
        assert!(doc.set(MAP, "s", &json!({"command": "s"})).unwrap_err().contains("more than once"));
        assert!(doc.remove(MAP, "a").is_err());
        assert_eq!(doc.text(), text);
        let mut doc = Document::parse(Format::Json, "{\"mcpServers\": {\"s\": {}, \"s\": {\"command\": \"x\"}}}").unwrap();
        assert!(doc.set(MAP, "s", &json!({"command": "s"})).is_err());
        // Duplicates elsewhere are not aibox's business.
        let out = edit(Format::Json, MAP, "{\"a\": 1, \"a\": 2}", "s", &json!({"command": "s"}));
        assert!(out.contains("\"a\": 2"), "{out}");
    }
}
