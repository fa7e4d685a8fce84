//! Secrets in text aibox prints or publishes.
//!
//! aibox holds three kinds of secret: registry credentials (Docker's `config.json` `auths` and
//! credential helpers, `AIBOX_REGISTRY_PASSWORD`), key passwords (`COSIGN_PASSWORD`, or asked on
//! the terminal), and MCP servers' tokens, which never pass through aibox at all (agent configs
//! get references such as `${env:NAME}`, which each agent resolves from its own environment).
//! None of them is ever formatted into a message. The one way a secret can still reach a
//! message is inside a location the user wrote with credentials in it: a store
//! `docker://robot:TOKEN@harbor.internal/ns`, a source mirror `https://user:TOKEN@nexus/...`, a
//! `--source` URL copied from a CI checkout. [`redact`] replaces the userinfo of such locations
//! by `***`; every line and document the binaries print goes through it
//! ([`crate::term::Printer`]), and [`strip_userinfo`] keeps it out of what is published.

use std::borrow::Cow;

/// What stands in for a removed userinfo.
pub const REDACTED: &str = "***";

/// Characters that end a location inside free text (JSON and shell quoting, brackets, lists).
fn ends_location(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '(' | ')' | '<' | '>' | ',' | ';' | '[' | ']' | '{' | '}')
}

/// `text` with the userinfo of every location in it replaced by `***`: after a scheme
/// (`https://USER:TOKEN@host`, `docker://TOKEN@host`) whatever it is, and without one when it has
/// a password (`robot:TOKEN@harbor.internal/ns`, as a registry is named in messages).
/// `name@version`, `name@sha256:...` and `user@example.com` are left as they are.
pub fn redact(text: &str) -> Cow<'_, str> {
    replace_userinfo(text, Some(REDACTED))
}

/// `url` without its userinfo (`https://user:token@host/x` → `https://host/x`), for values that
/// are published (the `org.opencontainers.image.source` annotation).
pub fn strip_userinfo(url: &str) -> Cow<'_, str> {
    replace_userinfo(url, None)
}

fn replace_userinfo<'a>(text: &'a str, with: Option<&str>) -> Cow<'a, str> {
    if !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(ends_location).unwrap_or(rest.len());
        let (token, tail) = rest.split_at(end);
        changed |= replace_in_token(token, with, &mut out);
        let mut chars = tail.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    if changed { Cow::Owned(out) } else { Cow::Borrowed(text) }
}

/// Copy `token` (no delimiters in it) to `out`, replacing userinfo; returns whether it did.
fn replace_in_token(token: &str, with: Option<&str>, out: &mut String) -> bool {
    let mut changed = false;
    let mut rest = token;
    let mut had_scheme = false;
    // Every `scheme://` in the token (a mirror rule `FROM=TO` holds two).
    while let Some(i) = rest.find("://") {
        had_scheme = true;
        let (head, after) = rest.split_at(i + 3);
        out.push_str(head);
        let authority = &after[..after.find(['/', '?', '#']).unwrap_or(after.len())];
        match authority.rfind('@') {
            Some(at) if at > 0 => {
                push_replacement(out, with);
                rest = &after[at..];
                if with.is_none() {
                    rest = &rest[1..];
                }
                changed = true;
            }
            _ => rest = after,
        }
    }
    // Without a scheme only `user:password@host[:port]`: `oci:DIR:NAME@sha256:...` and
    // `NAME@VERSION` are references, not locations with credentials.
    if !had_scheme && !rest.starts_with("oci:") && !rest.starts_with("oci-archive:") {
        let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
        if let Some(at) = authority.rfind('@')
            && authority[..at].contains(':')
            && is_host(&authority[at + 1..])
        {
            push_replacement(out, with);
            out.push_str(&rest[if with.is_some() { at } else { at + 1 }..]);
            return true;
        }
    }
    out.push_str(rest);
    changed
}

/// Whether `s` is `host` or `host:port` (a digest `sha256:...` is not).
fn is_host(s: &str) -> bool {
    // A location at the end of a sentence or before `: reason`.
    let s = s.trim_end_matches([':', '.']);
    let (host, port) = s.rsplit_once(':').map_or((s, None), |(h, p)| (h, Some(p)));
    !host.is_empty()
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && !host.starts_with("sha256")
        && !host.starts_with("sha512")
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn push_replacement(out: &mut String, with: Option<&str>) {
    if let Some(w) = with {
        out.push_str(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_redacted_wherever_it_is() {
        let cases = [
            ("docker://robot:pa55@harbor.internal/toolpacks", "docker://***@harbor.internal/toolpacks"),
            ("cannot reach registry robot:pa55@127.0.0.1:5000: refused", "cannot reach registry ***@127.0.0.1:5000: refused"),
            ("unknown store `https://u:p@x/ns`", "unknown store `https://***@x/ns`"),
            ("[https://github.com/=https://me:tok@nexus/gh/]", "[https://github.com/=https://***@nexus/gh/]"),
            ("\"https://ghp_token@github.com/o/r.git\"", "\"https://***@github.com/o/r.git\""),
            ("a https://u:p@one/x and http://v:q@two", "a https://***@one/x and http://***@two"),
        ];
        for (text, want) in cases {
            assert_eq!(redact(text), want, "{text}");
        }
        let references = [
            "java@21",
            "git-mcp@sha256:0123abcd",
            "git-mcp@sha256:012345678901",
            "tests <t@example.com>",
            "oci:/srv/layout:hello@sha256:ab",
            "oci:layout:hello@sha256:012345678901",
            "oci-archive:bundle.tar:java@sha256:ab",
            "docker://127.0.0.1:5000/ns/hello@sha256:ab",
            "a@b:c",
            "x:y@sha256:0123",
        ];
        assert_eq!(redact("docker://robot:pa55@[::1]:5000/ns"), "docker://***@[::1]:5000/ns");
        for text in references {
            assert!(matches!(redact(text), Cow::Borrowed(_)), "{text} changed to {}", redact(text));
        }
        assert_eq!(strip_userinfo("https://x-access-token:tok@github.com/o/r"), "https://github.com/o/r");
        assert_eq!(strip_userinfo("packs/java/21"), "packs/java/21");
    }
}
