//! Crash safety end to end: `aibox install`, `update`, `uninstall`, `mcp enable`, `mcp disable`
//! and `cache clean` killed with SIGKILL at random points, many times over one toolpacks dir (an
//! OCI layout store; `tool` and the MCP server `echo-mcp` get a newer release that `update`
//! moves them to, `tool` depends on `lib`) and one HOME with agent configs the user wrote.
//! After every kill:
//!
//! - `aibox --json status` works, and the state matches the trees on disk: every pack it names
//!   has its version directory and a `current` link to a tree; anything else in the toolpacks
//!   dir is only what the killed run had moved into place before writing the state (aibox's own
//!   version dirs and links, which the next command removes);
//! - env.sh is whole: exactly what it was before the command or exactly what the state now
//!   derives (`aibox env`), never half, and sourcing it gives only directories that exist;
//! - each agent config (Claude Code's JSON, Codex's TOML, Cursor's JSONC with comments, the
//!   canonical `~/.config/aibox/mcp.json`) is byte for byte what an uninterrupted run leaves with
//!   the server enabled or disabled: never half a file, the user's servers and comments intact.
//!   `enable` writes the agents one file at a time (each atomically), so a kill between two files
//!   legitimately leaves some agents configured and others not; what must hold is that every
//!   entry aibox wrote stays aibox's (the server is enabled, or aibox's state records the entry:
//!   the state is written before each file, with the record from before the edit as `pending`,
//!   and the next run settles from the file which one holds), so that the re-run finishes the
//!   job and a later `disable` takes every entry out again;
//! - a re-run of the same command, not killed, completes (an `uninstall` or `disable` that the
//!   killed run had already committed answers "not installed" / "not enabled" with exit 1), and
//!   afterwards everything is exactly as after an uninterrupted run: state, trees, `current`
//!   links, env.sh, agent configs, aibox's ownership records, empty staging, and
//!   `aibox verify-installed` passes.
//!
//! Half the time a killed `cache clean` is not re-run: the next command (often an install from
//! what is left of the cache) runs on what it left.
//!
//! Kill delays are drawn from [0, T] (half of them from its second half, where activation
//! happens), T following how long the same command (with a warm or a cold cache) takes when it
//! runs to completion. `CRASH_RUNS` (default 60) sets the number of killed runs; `CRASH_SEED`
//! replays the sequence of commands and delays of a run (every failure names its seed).

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Site, json};

type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}

/// xorshift64*, seeded through splitmix64: reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }

    /// Uniform in [0, 1].
    fn unit(&mut self) -> f64 {
        f64::from(u32::try_from(self.next() >> 32).unwrap()) / f64::from(u32::MAX)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

/// `tool` and the MCP server `echo-mcp` each have a release and a newer one (which `update`
/// moves them to); `lib` has one.
const OLD: &str = "1.0.0";
const NEW: &str = "1.1.0";
const SERVER: &str = "echo-mcp";

/// What a run does. `EnableFresh` installs the MCP pack and configures the agents; `EnableAgain`
/// only configures them (the pack is installed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    InstallLib,
    UninstallLib,
    InstallTool,
    Update,
    UninstallTool,
    EnableFresh,
    EnableAgain,
    Disable,
    UninstallMcp,
    CacheClean,
}

impl Op {
    fn args(self) -> &'static [&'static str] {
        match self {
            Op::InstallLib => &["install", "lib"],
            Op::UninstallLib => &["uninstall", "lib"],
            Op::InstallTool => &["install", "tool@1"],
            Op::Update => &["update"],
            Op::UninstallTool => &["uninstall", "tool"],
            Op::EnableFresh | Op::EnableAgain => &["mcp", "enable", SERVER],
            Op::Disable => &["mcp", "disable", SERVER],
            Op::UninstallMcp => &["uninstall", SERVER],
            Op::CacheClean => &["cache", "clean"],
        }
    }

    /// Whether it fetches packs (and so runs differently with an empty cache).
    fn fetches(self) -> bool {
        matches!(self, Op::InstallLib | Op::InstallTool | Op::Update | Op::EnableFresh)
    }
}

/// Where the packs and the server stand (installed versions).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Now {
    lib: bool,
    tool: Option<String>,
    server: Option<String>,
    server_enabled: bool,
}

impl Now {
    /// The commands that change something from here.
    fn choices(&self) -> Vec<Op> {
        let mut ops = vec![Op::CacheClean];
        if self.tool.is_none() {
            ops.push(Op::InstallTool);
            ops.push(if self.lib { Op::UninstallLib } else { Op::InstallLib });
        } else {
            ops.push(Op::UninstallTool);
        }
        if self.tool.as_deref() == Some(OLD) || self.server.as_deref() == Some(OLD) {
            ops.push(Op::Update);
        }
        match (&self.server, self.server_enabled) {
            (None, _) => ops.push(Op::EnableFresh),
            (Some(_), true) => ops.extend([Op::Disable, Op::UninstallMcp]),
            (Some(_), false) => ops.extend([Op::EnableAgain, Op::UninstallMcp]),
        }
        ops
    }

    /// Where `op` run to completion leaves things.
    fn after(&self, op: Op) -> Now {
        let mut next = self.clone();
        match op {
            Op::InstallLib => next.lib = true,
            Op::UninstallLib => next.lib = false,
            Op::InstallTool => {
                next.lib = true;
                next.tool = Some(OLD.into());
            }
            Op::Update => {
                for version in [&mut next.tool, &mut next.server].into_iter().flatten() {
                    *version = NEW.into();
                }
            }
            Op::UninstallTool => next.tool = None,
            Op::EnableFresh => {
                next.server = Some(OLD.into());
                next.server_enabled = true;
            }
            Op::EnableAgain => next.server_enabled = true,
            Op::Disable => next.server_enabled = false,
            Op::UninstallMcp => {
                next.server = None;
                next.server_enabled = false;
            }
            Op::CacheClean => {}
        }
        next
    }
}

/// What the agent configs should hold: after a kill, any state an uninterrupted run leaves
/// (`Any`); after a completed run, the server enabled at that release, or not enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Agents<'a> {
    Any,
    Enabled(&'a str),
    Disabled,
}

/// One toolpacks dir and HOME, with the packs published and the agent configs' reference bytes.
struct Crash {
    site: Site,
    home: PathBuf,
    workspace: PathBuf,
    index: PathBuf,
    /// The store's index without the newer releases, and with them (`update` finds them then).
    index_old: Vec<u8>,
    index_new: Vec<u8>,
    /// Agent config files: Claude Code, Codex, Cursor, aibox's canonical file.
    files: Vec<PathBuf>,
    /// Their bytes (None: absent) as uninterrupted runs leave them: the server enabled at the
    /// old and the new release, and disabled.
    on_old: Vec<Option<Vec<u8>>>,
    on_new: Vec<Option<Vec<u8>>>,
    off: Vec<Option<Vec<u8>>>,
}

/// Publish `name` `version`: a `bin/NAME`, many small files and one large one (so that kills
/// land inside downloading, extracting and linking too).
fn publish(site: &Site, rng: &mut Rng, name: &str, version: &str, extra_yaml: &str, small: usize, large: usize) {
    let dir = site.env.path().join("src").join(name).join(version);
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("share/many")).unwrap();
    let upper = name.to_uppercase().replace('-', "_");
    std::fs::write(
        dir.join("pack.yaml"),
        format!("name: {name}\nversion: {version}\ndescription: crash test pack {name}\nmaintainer: tests <t@example.com>\npath: [bin]\nenv:\n  {upper}_HOME: ${{PACK_ROOT}}\n  {upper}_VERSION: \"{version}\"\n{extra_yaml}"),
    )
    .unwrap();
    let bin = root.join("bin").join(name);
    std::fs::write(&bin, format!("#!/bin/sh\necho {name} {version}\n")).unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for i in 0..small {
        std::fs::write(root.join(format!("share/many/f{i:04}")), rng.bytes(512 + i % 7 * 700)).unwrap();
    }
    std::fs::write(root.join("share/large"), rng.bytes(large)).unwrap();
    site.env.ok(&["-q", "pack", "publish", dir.to_str().unwrap(), "--to", &site.store, "--key", &site.key]);
}

/// What the user had in their agent configs before aibox.
const CLAUDE: &str = "{\n  \"numStartups\": 12,\n  \"mcpServers\": {\n    \"mine\": {\"type\": \"stdio\", \"command\": \"my-server\", \"args\": []}\n  },\n  \"projects\": {\"/workspace\": {\"allowedTools\": []}}\n}\n";
const CODEX: &str = "# my Codex settings\nmodel = \"o4-mini\" # fast\n\n[mcp_servers.mine]\ncommand = \"my-server\"\nargs = [\"--flag\"] # keep this\n";
const CURSOR: &str = "{\n  // my servers\n  \"mcpServers\": {\n    \"mine\": {\"command\": \"my-server\", \"envFile\": \".env\"}\n  }\n}\n";

/// Read files with each format's own parser (python: json, json5, tomllib); path → value.
const PARSE: &str = "import json, sys, tomllib, json5
out = {}
for fmt, path in zip(sys.argv[1::2], sys.argv[2::2]):
    text = open(path, 'rb').read().decode('utf-8-sig')
    out[path] = json.loads(text) if fmt == 'json' else json5.loads(text) if fmt == 'jsonc' else tomllib.loads(text)
print(json.dumps(out))
";

/// Start `command` and SIGKILL it after `delay` unless it exits first; its status, and when it
/// exited on its own.
fn kill_after(command: &mut Command, delay: Duration) -> (ExitStatus, Option<Duration>) {
    let start = Instant::now();
    let mut child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, Some(start.elapsed()));
        }
        let left = delay.saturating_sub(start.elapsed());
        if left.is_zero() {
            let _ = child.kill();
            return (child.wait().unwrap(), None);
        }
        std::thread::sleep(left.min(Duration::from_millis(2)));
    }
}

fn read(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

fn text(out: &Output) -> String {
    format!("exit {:?}\nstdout: {}\nstderr: {}", out.status.code(), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

impl Crash {
    fn new(rng: &mut Rng) -> Self {
        let site = Site::layout();
        let home = site.env.path().join("home");
        let workspace = site.env.path().join("workspace");
        std::fs::create_dir_all(&workspace).unwrap();
        publish(&site, rng, "lib", "1.0.0", "", 150, 1 << 20);
        let server = "command: bin/echo-mcp\nargs: [\"--root\", \"${WORKSPACE}\"]\n";
        publish(&site, rng, "tool", OLD, "depends: [lib@1]\n", 300, 3 << 19);
        publish(&site, rng, SERVER, OLD, server, 150, 1 << 20);
        let index = PathBuf::from(site.store.trim_start_matches("oci:")).join("index.json");
        let index_old = std::fs::read(&index).unwrap();
        publish(&site, rng, "tool", NEW, "depends: [lib@1]\n", 300, 3 << 19);
        publish(&site, rng, SERVER, NEW, server, 150, 1 << 20);
        let index_new = std::fs::read(&index).unwrap();

        let files: Vec<PathBuf> = [".claude.json", ".codex/config.toml", ".cursor/mcp.json", ".config/aibox/mcp.json"].iter().map(|f| home.join(f)).collect();
        for (file, content) in files.iter().zip([CLAUDE, CODEX, CURSOR]) {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, content).unwrap();
        }
        let mut crash = Self { site, home, workspace, index, index_old, index_new, files, on_old: Vec::new(), on_new: Vec::new(), off: Vec::new() };

        // The reference: what uninterrupted runs leave in the agents' files.
        let before: Vec<_> = crash.files.iter().map(|f| read(f)).collect();
        for new in [true, false] {
            crash.set_index(new);
            crash.ok(&["mcp", "enable", SERVER]);
            let on: Vec<_> = crash.files.iter().map(|f| read(f)).collect();
            crash.ok(&["mcp", "disable", SERVER]);
            crash.off = crash.files.iter().map(|f| read(f)).collect();
            crash.ok(&["uninstall", SERVER]);
            assert_eq!(crash.files.iter().map(|f| read(f)).collect::<Vec<_>>(), crash.off);
            if new { crash.on_new = on } else { crash.on_old = on }
        }
        for ((file, off), before) in crash.files.iter().zip(&crash.off).zip(&before).take(3) {
            assert_eq!(off, before, "{}: disable gives back the user's file", file.display());
        }
        for on in [&crash.on_old, &crash.on_new] {
            let parsed = crash.parse(on);
            for (i, file) in crash.files.iter().enumerate() {
                let value = &parsed[i];
                let servers = if i == 1 { &value["mcp_servers"] } else { &value["mcpServers"] };
                assert!(servers.get(SERVER).is_some(), "{}: {value}", file.display());
                assert!(i == 3 || servers.get("mine").is_some(), "{}: the user's server is gone: {value}", file.display());
            }
            let codex = String::from_utf8(on[1].clone().unwrap()).unwrap();
            assert!(codex.contains("# my Codex settings") && codex.contains("# keep this"), "{codex}");
            assert!(String::from_utf8_lossy(on[2].as_deref().unwrap()).contains("// my servers"));
        }
        assert!(crash.on_old.iter().zip(&crash.on_new).all(|(old, new)| old != new), "the releases render differently");
        crash
    }

    /// Parse the agent files' reference bytes `on`, each with its format's own parser.
    fn parse(&self, on: &[Option<Vec<u8>>]) -> Vec<serde_json::Value> {
        let dir = self.site.env.path().join("reference");
        std::fs::create_dir_all(&dir).unwrap();
        let mut args = vec!["-c".to_owned(), PARSE.to_owned()];
        for (i, (file, format)) in self.files.iter().zip(["json", "toml", "jsonc", "json"]).enumerate() {
            let copy = dir.join(i.to_string());
            std::fs::write(&copy, on[i].as_deref().unwrap_or_else(|| panic!("{} missing with the server enabled", file.display()))).unwrap();
            args.extend([format.to_owned(), copy.to_str().unwrap().to_owned()]);
        }
        let out = Command::new("python3").args(&args).output().unwrap();
        assert!(out.status.success(), "an agent file does not parse: {}", text(&out));
        let by_copy = json(&String::from_utf8(out.stdout).unwrap());
        (0..self.files.len()).map(|i| by_copy[dir.join(i.to_string()).to_str().unwrap()].clone()).collect()
    }

    fn aibox(&self) -> Command {
        let mut c = self.site.aibox();
        c.env("AIBOX_WORKSPACE", &self.workspace).stdin(Stdio::null());
        for var in ["CODEX_HOME", "CLAUDE_CONFIG_DIR", "CLINE_DIR", "XDG_CONFIG_HOME"] {
            c.env_remove(var);
        }
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.aibox().args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "aibox {args:?}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    fn try_ok(&self, args: &[&str]) -> Result<String, String> {
        let out = self.run(args);
        ensure!(out.status.success(), "aibox {args:?} failed: {}", text(&out));
        String::from_utf8(out.stdout).map_err(|e| e.to_string())
    }

    /// Publish (or withdraw) the newer releases by swapping the store's index.
    fn set_index(&self, new: bool) {
        let tmp = self.index.with_extension("json.swap");
        std::fs::write(&tmp, if new { &self.index_new } else { &self.index_old }).unwrap();
        std::fs::rename(&tmp, &self.index).unwrap();
    }

    fn toolpacks(&self) -> &Path {
        &self.site.toolpacks
    }

    /// The packs `aibox --json status` reports: name → version.
    fn status(&self) -> Result<BTreeMap<String, String>, String> {
        let out = self.try_ok(&["--json", "status"])?;
        let doc: serde_json::Value = serde_json::from_str(&out).map_err(|e| format!("status is not JSON ({e}): {out}"))?;
        let packs = doc["packs"].as_object().ok_or_else(|| format!("status has no packs: {out}"))?;
        packs.iter().map(|(n, p)| p["version"].as_str().map(|v| (n.clone(), v.to_owned())).ok_or_else(|| format!("{n} has no version: {out}"))).collect()
    }

    /// aibox's MCP state (`~/.config/aibox/mcp-state.json`), empty when absent.
    fn mcp_state(&self) -> Result<serde_json::Value, String> {
        match std::fs::read(self.home.join(".config/aibox/mcp-state.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| format!("mcp-state.json does not parse: {e}")),
            Err(_) => Ok(serde_json::json!({})),
        }
    }

    fn enabled(state: &serde_json::Value) -> bool {
        state["enabled"]["user"].as_array().is_some_and(|a| a.iter().any(|n| n == SERVER))
    }

    /// Whether aibox's state records the server's entry in `file` (which holds one or not:
    /// `present`) as aibox's. A killed run may have left the record of an edit it was writing
    /// with the one from before (`pending`); the file then tells which of the two holds.
    fn owned(state: &serde_json::Value, file: &Path, present: bool) -> bool {
        let record = &state["written"][file.to_str().unwrap()];
        let new = record["entries"].get(SERVER).is_some();
        match record.get("pending") {
            Some(before) if before["entries"].get(SERVER).is_some() != new => present,
            _ => new,
        }
    }

    fn now(&self) -> Result<Now, String> {
        let packs = self.status()?;
        let state = self.mcp_state()?;
        Ok(Now { lib: packs.contains_key("lib"), tool: packs.get("tool").cloned(), server: packs.get(SERVER).cloned(), server_enabled: Self::enabled(&state) })
    }

    /// State, trees, links and env.sh; `settled`: exactly as after an uninterrupted run.
    fn check_toolpacks(&self, env_before: Option<&[u8]>, settled: bool) -> Check {
        let packs = self.status()?;
        for (name, version) in &packs {
            let tree = self.toolpacks().join(name).join(version);
            ensure!(tree.is_dir(), "the state names {name} {version} but {} is missing", tree.display());
            // What MCP servers and PATH go through: there, and to a version that is there.
            let current = self.toolpacks().join(name).join("current");
            ensure!(current.is_dir(), "the state names {name} but {} does not lead to a tree", current.display());
            if settled {
                let link = std::fs::read_link(self.toolpacks().join(name).join("current")).map_err(|e| format!("{name}/current: {e}"))?;
                ensure!(link == Path::new(version), "{name}/current -> {} but the state says {version}", link.display());
                let mut entries: Vec<String> = std::fs::read_dir(self.toolpacks().join(name)).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
                entries.sort();
                let mut want = vec!["current".to_owned(), version.clone()];
                want.sort();
                ensure!(entries == want, "{name}: {entries:?} (one version and its link)");
            }
        }
        for dir in self.site.pack_dirs() {
            if packs.contains_key(&dir) {
                continue;
            }
            ensure!(!settled, "{dir} is on disk but not in the state");
            // Moved into place by the killed run before it wrote the state: only aibox's own
            // version dirs and link, which the next command removes.
            for entry in std::fs::read_dir(self.toolpacks().join(&dir)).unwrap().flatten() {
                let n = entry.file_name().to_string_lossy().into_owned();
                ensure!(n == "current" || n == ".current.tmp" || (semver::Version::parse(&n).is_ok() && entry.path().is_dir()), "{dir}/{n} on disk, not in the state");
            }
        }
        if settled {
            ensure!(self.site.staging_left() == 0, "staging left: {:?}", std::fs::read_dir(self.toolpacks().join(".aibox/staging")).unwrap().flatten().map(|e| e.file_name()).collect::<Vec<_>>());
        }

        let env_sh = self.toolpacks().join("env.sh");
        let now = std::fs::read(&env_sh).map_err(|e| format!("env.sh: {e}"))?;
        let derived = self.try_ok(&["env", "--shell", "sh"])?;
        ensure!(
            now == derived.as_bytes() || (!settled && env_before == Some(now.as_slice())),
            "env.sh is neither what it was nor what the state derives:\n--- env.sh\n{}\n--- derived\n{derived}\n--- before\n{}",
            String::from_utf8_lossy(&now),
            String::from_utf8_lossy(env_before.unwrap_or_default())
        );
        // Sourcing it works, and puts only directories that exist on PATH.
        let out = Command::new("sh").args(["-ec", ". \"$1\"; printf %s \"$PATH\"", "sh"]).arg(&env_sh).env("PATH", "/usr/bin:/bin").output().unwrap();
        ensure!(out.status.success(), "sourcing env.sh fails: {}", text(&out));
        let path = String::from_utf8_lossy(&out.stdout).into_owned();
        for dir in path.split(':').filter(|d| d.starts_with(self.toolpacks().to_str().unwrap())) {
            ensure!(Path::new(dir).is_dir(), "env.sh puts {dir} on PATH, which does not exist");
        }
        Ok(())
    }

    /// Agent configs: each file old or new, never half; aibox's entries stay aibox's.
    fn check_agents(&self, expect: Agents) -> Check {
        let state = self.mcp_state()?;
        for (i, file) in self.files.iter().enumerate() {
            let now = read(file);
            let show = |b: &Option<Vec<u8>>| b.as_deref().map_or_else(|| "(absent)".to_owned(), |b| String::from_utf8_lossy(b).into_owned());
            let refs = [("enabled at the old release", &self.on_old[i]), ("enabled at the new release", &self.on_new[i]), ("disabled", &self.off[i])];
            let want = match expect {
                Agents::Enabled(OLD) => &refs[..1],
                Agents::Enabled(_) => &refs[1..2],
                Agents::Disabled => &refs[2..],
                Agents::Any => &refs[..],
            };
            ensure!(
                want.iter().any(|(_, bytes)| now == **bytes),
                "{}: half-written, changed, or not as an uninterrupted run leaves it (expected it {}):\n{}\n--- expected\n{}",
                file.display(),
                want.iter().map(|w| w.0).collect::<Vec<_>>().join(" or "),
                show(&now),
                show(want[0].1)
            );
            if now != self.off[i] {
                ensure!(Self::enabled(&state) || Self::owned(&state, file, true), "{}: has aibox's {SERVER} entry, but aibox's state neither enables the server nor records the entry:\n{state:#}", file.display());
            }
            match expect {
                Agents::Enabled(_) => ensure!(Self::owned(&state, file, true), "{}: the entry is not recorded as aibox's:\n{state:#}", file.display()),
                Agents::Disabled => ensure!(!Self::owned(&state, file, false), "{}: aibox still records an entry:\n{state:#}", file.display()),
                Agents::Any => {}
            }
        }
        if expect != Agents::Any {
            let on = matches!(expect, Agents::Enabled(_));
            ensure!(Self::enabled(&state) == on, "enabled should be {on}:\n{state:#}");
        }
        let list = json(&self.try_ok(&["--json", "mcp", "list"])?);
        if matches!(expect, Agents::Enabled(_)) {
            let agents = list["enabled"].as_array().and_then(|a| a.iter().find(|s| s["name"] == SERVER)).map(|s| s["agents"].clone()).unwrap_or_default();
            ensure!(agents.as_array().is_some_and(|a| a.len() == 4 && a.iter().all(|a| a["status"] == "configured")), "mcp list: {list:#}");
        }
        Ok(())
    }

    /// Everything after a kill (old or new).
    fn check_killed(&self, env_before: &[u8]) -> Check {
        self.check_toolpacks(Some(env_before), false)?;
        self.check_agents(Agents::Any)
    }

    /// Everything after a completed run that should have reached `expect`.
    fn check_settled(&self, expect: &Now) -> Check {
        self.check_toolpacks(None, true)?;
        self.check_agents(match &expect.server {
            Some(version) if expect.server_enabled => Agents::Enabled(version),
            _ => Agents::Disabled,
        })?;
        let now = self.now()?;
        ensure!(now == *expect, "after the re-run: {now:?}, expected {expect:?}");
        self.try_ok(&["-q", "verify-installed"]).map(drop)
    }
}

#[test]
#[allow(clippy::print_stderr)] // the counts, for `--nocapture`; failures name the seed
fn killed_commands_leave_a_whole_state_and_reruns_complete() {
    let runs: usize = std::env::var("CRASH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let seed: u64 = std::env::var("CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        t.as_secs() ^ u64::from(t.subsec_nanos())
    });
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let crash = Crash::new(&mut rng);
    let setup = started.elapsed();

    // How long each (command, cold cache) takes uninterrupted: measured the first time it comes
    // up, then following the runs that finish before their kill.
    let mut limits: BTreeMap<(Op, bool), Duration> = BTreeMap::new();
    let mut log: Vec<String> = Vec::new();
    let (mut killed, mut finished, mut reruns_refused) = (0, 0, 0);
    let fail = |log: &[String], what: String| -> ! {
        let tail = log.iter().rev().take(12).rev().cloned().collect::<Vec<_>>().join("\n  ");
        panic!("crash test (CRASH_SEED={seed}): {what}\nlast runs:\n  {tail}");
    };
    let mut run = 0;
    while run < runs {
        let before = crash.now().unwrap_or_else(|e| fail(&log, e));
        let choices = before.choices();
        let op = choices[rng.below(choices.len())];
        let cold = op.fetches() && rng.below(2) == 0;
        crash.set_index(op == Op::Update);
        if cold {
            crash.ok(&["-q", "cache", "clean"]);
        }
        let expect = before.after(op);
        let Some(&limit) = limits.get(&(op, cold)) else {
            let start = Instant::now();
            let out = crash.run(op.args());
            let took = start.elapsed();
            if !out.status.success() {
                fail(&log, format!("{op:?} (uninterrupted) failed: {}", text(&out)));
            }
            log.push(format!("{op:?} cold={cold}: uninterrupted, {took:?}"));
            crash.check_settled(&expect).unwrap_or_else(|e| fail(&log, format!("after {op:?} (uninterrupted): {e}")));
            limits.insert((op, cold), took);
            continue;
        };
        let env_before = std::fs::read(crash.toolpacks().join("env.sh")).unwrap_or_default();

        // Mostly anywhere, often late (activation: renames, state, links, env.sh, agent files).
        let u = if rng.below(2) == 0 { rng.unit() } else { 0.5 + 0.5 * rng.unit() };
        let delay = limit.mul_f64(u);
        let (status, exited) = kill_after(crash.aibox().args(op.args()), delay);
        let was_killed = status.signal() == Some(9);
        // Follow how long the command takes now (the cache, the machine's load).
        limits.insert((op, cold), exited.unwrap_or_else(|| limit.mul_f64(1.05)));
        if was_killed {
            killed += 1;
        } else {
            finished += 1;
            if !status.success() {
                fail(&log, format!("{op:?} was not killed and failed ({status})"));
            }
        }
        log.push(format!("{op:?} cold={cold}: {} after {:?} (delay {delay:?} of {limit:?})", if was_killed { "killed" } else { "finished" }, exited.unwrap_or(delay)));
        crash.check_killed(&env_before).unwrap_or_else(|e| fail(&log, format!("after {op:?} was killed: {e}")));
        if op == Op::CacheClean && rng.below(2) == 0 {
            // No re-run: the next command (often an install from what is left of the cache)
            // must not take a half-removed cached tree for a whole one.
            run += 1;
            continue;
        }

        // The re-run completes; an uninstall or disable the killed run committed says so.
        let committed = crash.now().unwrap_or_else(|e| fail(&log, e));
        let done = match op {
            Op::UninstallTool => committed.tool.is_none(),
            Op::UninstallLib => !committed.lib,
            Op::UninstallMcp => committed.server.is_none(),
            Op::Disable => !committed.server_enabled,
            _ => false,
        };
        let out = crash.run(op.args());
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            if done && out.status.code() == Some(1) && (stderr.contains("is not installed") || stderr.contains("not enabled")) {
                reruns_refused += 1;
            } else {
                fail(&log, format!("the re-run of {op:?} failed: {}", text(&out)));
            }
        }
        crash.check_settled(&expect).unwrap_or_else(|e| fail(&log, format!("after the re-run of {op:?}: {e}")));
        run += 1;
    }
    eprintln!(
        "crash test: {runs} runs ({killed} killed, {finished} finished before the kill, {reruns_refused} re-runs found the work done) in {:?} (set-up {setup:?}); seed {seed}",
        started.elapsed()
    );
    assert!(killed * 3 >= runs, "too few runs were killed ({killed} of {runs}): the delays are off");
}

/// `aibox cache clean` killed while it removes unpacked trees: the next install of those layers
/// must not take a half-removed tree for a whole one (it links a cached tree when its marker
/// says the tree is complete). Packs of many files, so that kills land inside a removal.
#[test]
fn a_killed_cache_clean_leaves_no_half_tree_for_the_next_install() {
    let site = Site::layout();
    let mut rng = Rng::new(u64::from(std::process::id()));
    // Two packs: the order in which a directory lists a tree and its marker varies per layer.
    for name in ["many0", "many1"] {
        publish(&site, &mut rng, name, "1.0.0", "", 600, 1000);
    }
    let packs = |verb: &'static str| -> [&'static str; 4] { ["-q", verb, "many0", "many1"] };
    let mut limit = Duration::from_millis(40);
    let mut killed = 0;
    for round in 0..10 {
        site.ok(&packs("install"));
        site.ok(&packs("uninstall"));
        let delay = limit.mul_f64(rng.unit());
        match kill_after(site.aibox().args(["cache", "clean"]), delay) {
            (_, Some(took)) => limit = took,
            (status, None) => {
                killed += usize::from(status.signal() == Some(9));
                limit = limit.mul_f64(1.1);
            }
        }
        site.ok(&packs("install"));
        let out = site.aibox().args(["-q", "verify-installed"]).output().unwrap();
        assert!(out.status.success(), "round {round}, cache clean killed after {delay:?}: the install took what was left of a cached tree: {}", text(&out));
        site.ok(&packs("uninstall"));
    }
    assert!(killed > 0, "no cache clean was killed (each took about {limit:?})");
}
