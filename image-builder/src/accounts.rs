//! Adding the image's user to the base's `/etc/passwd`, `/etc/group` and `/etc/shadow`, the
//! way `useradd` would, as text: the builder never runs anything inside the image.
//!
//! A user of that name and uid already there is kept. Another account holding the uid (the
//! `ubuntu` user of Ubuntu's images has 1000) is removed with its own group, and named in the
//! report; a name or gid taken otherwise is an error.

use crate::base_files::BaseFiles;
#[cfg(test)]
use crate::base_files::Kind;
use crate::config::User;
use crate::error::{Error, Result};
use crate::layer::Meta;

/// The rewritten account files (only those that changed) and what was removed.
#[derive(Debug, Default)]
pub struct AccountFiles {
    /// `(path, content, owner/mode)` for each changed file.
    pub files: Vec<(&'static str, Vec<u8>, Meta)>,
    /// Accounts removed because they held the uid.
    pub replaced: Vec<String>,
}

/// The lines of account file `path`: `None` when the base has none; an error when it has one
/// the builder could not read (not a regular file, too large, not UTF-8).
fn lines(files: &BaseFiles, path: &str) -> Result<Option<(Vec<String>, Meta)>> {
    match files.accounts.get(path) {
        Some((bytes, meta)) => {
            let text = std::str::from_utf8(bytes).map_err(|_| Error::Account(format!("/{path} of the base is not UTF-8 text")))?;
            Ok(Some((text.lines().map(str::to_owned).collect(), *meta)))
        }
        None if files.exists(path) => Err(Error::Account(format!("/{path} of the base is not a regular file of at most 4 MiB"))),
        None => Ok(None),
    }
}

/// Remove `name` from the member lists (and, in gshadow, the admin lists) of group lines.
fn drop_member(lines: &mut [String], name: &str, fields: &[usize]) {
    for line in lines {
        let mut parts: Vec<String> = line.split(':').map(str::to_owned).collect();
        let mut changed = false;
        for &f in fields {
            if parts.get(f).is_some_and(|list| list.split(',').any(|m| m == name)) {
                parts[f] = parts[f].split(',').filter(|m| *m != name).collect::<Vec<_>>().join(",");
                changed = true;
            }
        }
        if changed {
            *line = parts.join(":");
        }
    }
}

fn field(line: &str, n: usize) -> Option<&str> {
    line.split(':').nth(n)
}

/// Add `user` (home `/home/<name>`, login shell `shell`) to the account files of `files`.
pub fn add_user(files: &BaseFiles, user: &User, shell: &str) -> Result<AccountFiles> {
    let uid = user.uid.to_string();
    let (mut passwd, passwd_meta) = lines(files, "etc/passwd")?.unwrap_or_else(|| (vec!["root:x:0:0:root:/root:/bin/sh".into()], Meta::root(0o644)));
    let (mut group, group_meta) = lines(files, "etc/group")?.unwrap_or_else(|| (vec!["root:x:0:".into()], Meta::root(0o644)));
    let mut shadow = lines(files, "etc/shadow")?;
    let mut gshadow = lines(files, "etc/gshadow")?;
    let mut out = AccountFiles::default();

    if let Some(existing) = passwd.iter().find(|l| field(l, 0) == Some(&user.name)) {
        if field(existing, 2) == Some(&uid) {
            return Ok(out); // already there, as asked
        }
        return Err(Error::Account(format!("the base already has `{}` with uid {}, not {uid}", user.name, field(existing, 2).unwrap_or("?"))));
    }
    // An account holding the uid goes, with its own group and memberships.
    let holders: Vec<String> = passwd.iter().filter(|l| field(l, 2) == Some(&uid)).filter_map(|l| field(l, 0)).map(str::to_owned).collect();
    if let Some(holder) = holders.first()
        && user.uid < 1000
    {
        return Err(Error::Account(format!("uid {uid} belongs to the system account `{holder}`, which is never replaced")));
    }
    for name in &holders {
        passwd.retain(|l| field(l, 0) != Some(name));
        if let Some((s, _)) = &mut shadow {
            s.retain(|l| field(l, 0) != Some(name));
        }
        let own_group = group.iter().find(|l| field(l, 0) == Some(name) && field(l, 2) == Some(&uid)).is_some();
        group.retain(|l| !(field(l, 0) == Some(name) && field(l, 2) == Some(&uid)));
        drop_member(&mut group, name, &[3]);
        if let Some((g, _)) = &mut gshadow {
            if own_group {
                g.retain(|l| field(l, 0) != Some(name));
            }
            drop_member(g, name, &[2, 3]);
        }
    }
    out.replaced = holders;
    if let Some(g) = group.iter().find(|l| field(l, 2) == Some(&uid) || field(l, 0) == Some(&user.name)) {
        return Err(Error::Account(format!("the base's group `{}` (gid {}) is in the way of `{}` (gid {uid})", field(g, 0).unwrap_or("?"), field(g, 2).unwrap_or("?"), user.name)));
    }
    passwd.push(format!("{name}:x:{uid}:{uid}::/home/{name}:{shell}", name = user.name));
    group.push(format!("{name}:x:{uid}:", name = user.name));
    let text = |l: Vec<String>| (l.join("\n") + "\n").into_bytes();
    out.files.push(("etc/passwd", text(passwd), passwd_meta));
    out.files.push(("etc/group", text(group), group_meta));
    if let Some((mut s, meta)) = shadow {
        s.push(format!("{}:!::0:99999:7:::", user.name));
        out.files.push(("etc/shadow", text(s), meta));
    }
    if let Some((mut g, meta)) = gshadow {
        g.push(format!("{}:!::", user.name));
        out.files.push(("etc/gshadow", text(g), meta));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(passwd: &str, group: &str, shadow: Option<&str>) -> BaseFiles {
        let mut f = BaseFiles::default();
        f.add("etc/passwd", Kind::Other, Meta::root(0o644), Some(passwd.as_bytes().to_vec()), None);
        f.add("etc/group", Kind::Other, Meta::root(0o644), Some(group.as_bytes().to_vec()), None);
        if let Some(s) = shadow {
            f.add("etc/shadow", Kind::Other, Meta { mode: 0o640, uid: 0, gid: 42 }, Some(s.as_bytes().to_vec()), None);
            f.add("etc/gshadow", Kind::Other, Meta { mode: 0o640, uid: 0, gid: 42 }, Some(b"root:*::\nadm:*::syslog,ubuntu\nubuntu:!::\n".to_vec()), None);
        }
        f
    }

    #[test]
    fn adds_the_user_and_replaces_a_uid_holder() {
        let f = base("root:x:0:0:root:/root:/bin/bash\nubuntu:x:1000:1000:Ubuntu:/home/ubuntu:/bin/bash\n", "root:x:0:\nadm:x:4:syslog,ubuntu\nubuntu:x:1000:\n", Some("root:*:1::::::\nubuntu:!:1::::::\n"));
        let out = add_user(&f, &User::default(), "/bin/bash").unwrap();
        assert_eq!(out.replaced, ["ubuntu"]);
        let text = |i: usize| String::from_utf8(out.files[i].1.clone()).unwrap();
        assert_eq!(text(0), "root:x:0:0:root:/root:/bin/bash\ndev:x:1000:1000::/home/dev:/bin/bash\n");
        assert_eq!(text(1), "root:x:0:\nadm:x:4:syslog\ndev:x:1000:\n");
        assert_eq!(text(2), "root:*:1::::::\ndev:!::0:99999:7:::\n");
        assert_eq!(out.files[2].2.gid, 42, "shadow keeps its group and mode");
        assert_eq!(text(3), "root:*::\nadm:*::syslog\ndev:!::\n");
    }

    #[test]
    fn keeps_an_existing_user_and_refuses_clashes() {
        let f = base("dev:x:1000:1000::/home/dev:/bin/sh\n", "dev:x:1000:\n", None);
        assert!(add_user(&f, &User::default(), "/bin/sh").unwrap().files.is_empty());
        let f = base("dev:x:1001:1001::/home/dev:/bin/sh\n", "dev:x:1001:\n", None);
        assert!(add_user(&f, &User::default(), "/bin/sh").unwrap_err().to_string().contains("uid 1001"));
        let f = base("root:x:0:0::/root:/bin/sh\n", "root:x:0:\nstaff:x:1000:\n", None);
        assert!(add_user(&f, &User::default(), "/bin/sh").unwrap_err().to_string().contains("`staff`"));
        let f = base("root:x:0:0::/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\n", "root:x:0:\n", None);
        assert!(add_user(&f, &User { name: "dev".into(), uid: 1 }, "/bin/sh").unwrap_err().to_string().contains("system account `daemon`"));
        let mut f = BaseFiles::default();
        f.add("etc/passwd", Kind::Symlink, Meta::root(0o777), None, Some("../usr/lib/passwd".into()));
        assert!(add_user(&f, &User::default(), "/bin/sh").unwrap_err().to_string().contains("not a regular file"));
    }
}
