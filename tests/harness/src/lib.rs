//! The real peers aibox is tested against, started on 127.0.0.1 on free ports.
//!
//! - [`Registry`]: the CNCF distribution registry (Debian's `docker-registry`, the registry
//!   inside Harbor), plain HTTP or TLS (a private CA) + basic auth.
//!
//! A peer lives until its owner drops it or the test process exits: each is started under a
//! small shell watchdog that stops it when the test process is gone, so a `static` shared by
//! all tests of a binary ("start each server once per test binary") never leaks.

mod fault_proxy;

pub use fault_proxy::{Fault, FaultProxy, Logged, Rule};

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running distribution registry.
pub struct Registry {
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// For TLS registries: the private CA certificate clients must trust.
    pub ca_cert: Option<PathBuf>,
    /// For basic-auth registries: user and password.
    pub credentials: Option<(String, String)>,
    dir: tempfile::TempDir,
    child: Child,
}

impl Registry {
    /// Start a plain-HTTP registry.
    pub fn start() -> Self {
        Self::launch(None)
    }

    /// Start a registry that speaks TLS (self-signed CA for 127.0.0.1) and requires basic auth.
    pub fn start_tls_auth(user: &str, password: &str) -> Self {
        Self::launch(Some((user, password)))
    }

    fn launch(secure: Option<(&str, &str)>) -> Self {
        require("docker-registry");
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        let mut ca_cert = None;
        let mut credentials = None;
        if let Some((user, password)) = secure {
            require("openssl");
            require("htpasswd");
            // A private CA and a server certificate it signs, as a Harbor behind a corporate CA.
            let (ca, ca_key) = (dir.path().join("ca.pem"), dir.path().join("ca.key"));
            let (cert, key, csr, ext) = (dir.path().join("cert.pem"), dir.path().join("key.pem"), dir.path().join("server.csr"), dir.path().join("server.ext"));
            run(Command::new("openssl").args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=aibox test CA"]).arg("-keyout").arg(&ca_key).arg("-out").arg(&ca));
            run(Command::new("openssl").args(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1"]).arg("-keyout").arg(&key).arg("-out").arg(&csr));
            std::fs::write(&ext, "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n").expect("write ext");
            run(Command::new("openssl").args(["x509", "-req", "-days", "2", "-CAcreateserial"]).arg("-in").arg(&csr).arg("-CA").arg(&ca).arg("-CAkey").arg(&ca_key).arg("-extfile").arg(&ext).arg("-out").arg(&cert));
            let htpasswd = Command::new("htpasswd").args(["-Bbn", user, password]).output().expect("htpasswd runs");
            assert!(htpasswd.status.success(), "htpasswd failed");
            let htpasswd_path = dir.path().join("htpasswd");
            std::fs::write(&htpasswd_path, htpasswd.stdout).expect("write htpasswd");
            let _ = write!(
                config,
                "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: aibox-test\n    path: {}\n",
                cert.display(),
                key.display(),
                htpasswd_path.display()
            );
            ca_cert = Some(ca);
            credentials = Some((user.to_owned(), password.to_owned()));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let child = watched(Command::new("docker-registry").arg("serve").arg(&config_path), &dir.path().join("registry.log"));
        let registry = Self { addr, ca_cert, credentials, dir, child };
        registry.wait_ready();
        registry
    }

    /// `docker://127.0.0.1:PORT/NAMESPACE`
    pub fn store(&self, namespace: &str) -> String {
        format!("docker://{}/{namespace}", self.addr)
    }

    /// The registry's storage directory (tests tamper with blobs here).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data/docker/registry/v2")
    }

    /// The registry's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(&self.addr) {
                if self.ca_cert.is_some() {
                    return;
                }
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut buf = [0u8; 64];
                if s.read(&mut buf).is_ok_and(|n| String::from_utf8_lossy(&buf[..n]).contains("200")) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("registry on {} did not start: {}", self.addr, self.log());
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `command` under a watchdog shell that stops it when this test process exits.
fn watched(command: &mut Command, log: &Path) -> Child {
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
    let script = r#"log="$1"; parent="$2"; shift 2; "$@" >"$log" 2>&1 & child=$!
trap 'kill $child 2>/dev/null; exit 0' TERM INT
while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.2; done
kill $child 2>/dev/null; wait $child 2>/dev/null"#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("watchdog")
        .arg(log)
        .arg(std::process::id().to_string())
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .expect("start watchdog")
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Panic with an install hint when a peer program is missing.
pub fn require(program: &str) {
    let found = std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()));
    assert!(found, "`{program}` is not installed; run `bash .ci/run` (or see ../shared/peers/README.md) to install the test peers");
}

fn run(command: &mut Command) {
    let out = command.output().expect("command runs");
    assert!(out.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}
