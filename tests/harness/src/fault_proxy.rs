//! A fault-injecting HTTP proxy: sits in front of a real registry (clients use its address as
//! the registry's) and forwards every request, except those a [`Rule`] picks, which get a
//! [`Fault`] instead: an error status, a 429 with `Retry-After`, a connection reset mid-body, a
//! truncated body, a lying `Content-Length`, a stall, or a slow drip. Every request is logged
//! ([`FaultProxy::requests`]) so tests can check what the client did about it (retried, waited,
//! resumed with `Range`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to do instead of forwarding a request faithfully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status (500, 502, 503, ...) with a small JSON error body.
    Status(u16),
    /// Answer 429 Too Many Requests with `Retry-After: <seconds>`.
    TooManyRequests {
        /// Seconds.
        retry_after: u64,
    },
    /// Forward the request, send the head and `bytes` of the body, then reset the connection.
    ResetMidBody {
        /// Body bytes sent before the reset.
        bytes: usize,
    },
    /// Forward the request, send the head and `bytes` of the body, then close (FIN).
    Truncate {
        /// Body bytes sent before closing.
        bytes: usize,
    },
    /// Forward the request and the whole body, with `Content-Length` off by `by` bytes, then
    /// close (a longer claim leaves the client waiting for bytes that never come; a shorter one
    /// hands it a short body).
    LieContentLength {
        /// Added to the real length (negative: claims fewer bytes).
        by: i64,
    },
    /// Send the head and `bytes` of the body, then go silent for `for_` before closing.
    Stall {
        /// Body bytes sent first.
        bytes: usize,
        /// Silence.
        for_: Duration,
    },
    /// Send the whole answer `chunk` bytes at a time, `every` apart.
    Drip {
        /// Bytes per write.
        chunk: usize,
        /// Pause between writes.
        every: Duration,
    },
}

/// Which requests get a fault: method and a path substring; `times` matching requests (then
/// the rule is spent), after letting `skip` matching requests through.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `GET`, `HEAD`, `PUT`, ... (`None`: any).
    pub method: Option<String>,
    /// A substring of the request path (`/blobs/sha256:`, `/manifests/`, `/blobs/uploads/`).
    pub path: String,
    /// The fault.
    pub fault: Fault,
    /// How many matching requests get it.
    pub times: usize,
    /// Matching requests let through first.
    pub skip: usize,
}

impl Rule {
    /// `times` requests with `method` and `path` in their path get `fault`.
    pub fn new(method: &str, path: &str, fault: Fault, times: usize) -> Self {
        Self { method: Some(method.to_owned()), path: path.to_owned(), fault, times, skip: 0 }
    }
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Logged {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The `Range` header, when sent.
    pub range: Option<String>,
    /// Whether it carried `Authorization`.
    pub authorized: bool,
    /// The status sent back (0: none, the connection was broken first).
    pub status: u16,
    /// The fault applied, if any.
    pub fault: Option<Fault>,
    /// When the request arrived.
    pub at: Instant,
}

#[derive(Default)]
struct Shared {
    rules: Vec<Rule>,
    log: Vec<Logged>,
}

/// A running fault proxy.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`: use it as the registry's address.
    pub addr: String,
    shared: Arc<Mutex<Shared>>,
}

impl FaultProxy {
    /// Start a proxy in front of `upstream` (`host:port`, plain HTTP).
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (upstream, state) = (upstream.to_owned(), shared.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, state) = (upstream.clone(), state.clone());
                std::thread::spawn(move || serve(client, &upstream, &state));
            }
        });
        Self { addr, shared }
    }

    /// `docker://127.0.0.1:PORT/NAMESPACE` through the proxy.
    pub fn store(&self, namespace: &str) -> String {
        format!("docker://{}/{namespace}", self.addr)
    }

    /// Add a rule (rules are matched in the order added; the first live match applies).
    pub fn inject(&self, rule: Rule) {
        self.shared.lock().unwrap().rules.push(rule);
    }

    /// Drop every rule and the log.
    pub fn reset(&self) {
        let mut s = self.shared.lock().unwrap();
        s.rules.clear();
        s.log.clear();
    }

    /// The requests seen since the last [`FaultProxy::reset`].
    pub fn requests(&self) -> Vec<Logged> {
        self.shared.lock().unwrap().log.clone()
    }
}

struct Request {
    method: String,
    path: String,
    head: Vec<u8>,
    body: Vec<u8>,
    range: Option<String>,
    authorized: bool,
}

fn serve(client: TcpStream, upstream: &str, shared: &Mutex<Shared>) {
    let _ = client.set_nodelay(true);
    let mut reader = BufReader::new(client.try_clone().expect("clone client socket"));
    let mut client = client;
    // Keep-alive: one request after another until the client or a fault closes the connection.
    while let Some(request) = read_request(&mut reader) {
        let at = Instant::now();
        let fault = pick(shared, &request);
        // Logged on arrival (a stalled answer may outlive the client's interest in it).
        let index = {
            let mut s = shared.lock().unwrap();
            s.log.push(Logged { method: request.method.clone(), path: request.path.clone(), range: request.range.clone(), authorized: request.authorized, status: 0, fault: fault.clone(), at });
            s.log.len() - 1
        };
        let status;
        let keep_open = match &fault {
            Some(Fault::Status(code)) => {
                status = *code;
                respond(&mut client, *code, &[], br#"{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}"#).is_ok()
            }
            Some(Fault::TooManyRequests { retry_after }) => {
                status = 429;
                respond(&mut client, 429, &[format!("Retry-After: {retry_after}")], br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"injected fault"}]}"#).is_ok()
            }
            _ => match forward(upstream, &request) {
                Some((answered, head, body)) => {
                    status = answered;
                    deliver(&mut client, &request.method, answered, &head, &body, fault.as_ref())
                }
                None => {
                    status = 502;
                    respond(&mut client, 502, &[], b"upstream unreachable").is_ok()
                }
            },
        };
        if let Some(entry) = shared.lock().unwrap().log.get_mut(index) {
            entry.status = status;
        }
        if !keep_open {
            return;
        }
    }
}

/// The first live rule matching `request`, spent by one.
fn pick(shared: &Mutex<Shared>, request: &Request) -> Option<Fault> {
    let mut s = shared.lock().unwrap();
    for rule in &mut s.rules {
        if rule.times == 0 || rule.method.as_ref().is_some_and(|m| *m != request.method) || !request.path.contains(&rule.path) {
            continue;
        }
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        rule.times -= 1;
        return Some(rule.fault.clone());
    }
    None
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    // Not HTTP (a TLS ClientHello starts with 0x16): close at once, as a plain-HTTP server does.
    if !reader.fill_buf().ok()?.first()?.is_ascii_uppercase() {
        return None;
    }
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        head.extend_from_slice(&line);
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    parsed.parse(&head).ok()?;
    let header = |name: &str| parsed.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| String::from_utf8_lossy(h.value).into_owned());
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let length = header("content-length").and_then(|v| v.trim().parse::<usize>().ok());
    let (method, path) = (parsed.method?.to_owned(), parsed.path?.to_owned());
    let (range, authorized) = (header("range"), header("authorization").is_some());
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).ok()?;
            let size = usize::from_str_radix(size_line.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        reader.read_exact(&mut body).ok()?;
    }
    // Forwarded with a fixed length, over a fresh connection that closes after one answer.
    let mut out = format!("{method} {path} HTTP/1.1\r\n");
    for h in parsed.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        if !matches!(name.as_str(), "connection" | "keep-alive" | "transfer-encoding" | "content-length") {
            out.push_str(&format!("{}: {}\r\n", h.name, String::from_utf8_lossy(h.value)));
        }
    }
    if chunked || length.is_some() {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    Some(Request { method, path, head: out.into_bytes(), body, range, authorized })
}

/// Send the request upstream; the answer's status, head lines (without framing headers) and
/// whole body.
fn forward(upstream: &str, request: &Request) -> Option<(u16, Vec<String>, Vec<u8>)> {
    let mut stream = TcpStream::connect(upstream).ok()?;
    stream.write_all(&request.head).ok()?;
    stream.write_all(&request.body).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head_len) = parsed.parse(&raw).ok()? else { return None };
    let status = parsed.code?;
    let header = |name: &str| parsed.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| String::from_utf8_lossy(h.value).into_owned());
    let rest = &raw[head_len..];
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) { dechunk(rest)? } else { rest.to_vec() };
    // A HEAD answer has no body but names the length of the one a GET would get.
    let lines = parsed
        .headers
        .iter()
        .filter(|h| !matches!(h.name.to_ascii_lowercase().as_str(), "connection" | "keep-alive" | "transfer-encoding") && (request.method == "HEAD" || !h.name.eq_ignore_ascii_case("content-length")))
        .map(|h| format!("{}: {}", h.name, String::from_utf8_lossy(h.value)))
        .collect();
    Some((status, lines, body))
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).ok()?.trim().split(';').next()?, 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        206 => "Partial Content",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn respond(client: &mut TcpStream, status: u16, extra: &[String], body: &[u8]) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", reason(status), body.len());
    for line in extra {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    client.write_all(head.as_bytes())?;
    client.write_all(body)
}

/// Send an upstream answer to the client, faithfully or with `fault`. Returns whether the
/// connection may serve another request.
fn deliver(client: &mut TcpStream, method: &str, status: u16, lines: &[String], body: &[u8], fault: Option<&Fault>) -> bool {
    let claimed = match fault {
        Some(Fault::LieContentLength { by }) => usize::try_from(i64::try_from(body.len()).unwrap_or(0) + by).unwrap_or(0),
        _ => body.len(),
    };
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for line in lines {
        head.push_str(line);
        head.push_str("\r\n");
    }
    if method != "HEAD" {
        head.push_str(&format!("Content-Length: {claimed}\r\n"));
    }
    head.push_str("\r\n");
    let head = head.into_bytes();
    let result = (|| -> std::io::Result<bool> {
        client.write_all(&head)?;
        match fault {
            None => {
                client.write_all(body)?;
                Ok(true)
            }
            Some(Fault::ResetMidBody { bytes }) => {
                client.write_all(&body[..(*bytes).min(body.len())])?;
                client.flush()?;
                std::thread::sleep(Duration::from_millis(50));
                // Closed with RST when serve drops the socket.
                let _ = rustix::net::sockopt::set_socket_linger(&*client, Some(Duration::ZERO));
                Ok(false)
            }
            Some(Fault::Truncate { bytes }) => {
                client.write_all(&body[..(*bytes).min(body.len())])?;
                Ok(false)
            }
            Some(Fault::LieContentLength { .. }) => {
                client.write_all(&body[..claimed.min(body.len())])?;
                Ok(false)
            }
            Some(Fault::Stall { bytes, for_ }) => {
                client.write_all(&body[..(*bytes).min(body.len())])?;
                client.flush()?;
                std::thread::sleep(*for_);
                Ok(false)
            }
            Some(Fault::Drip { chunk, every }) => {
                for piece in body.chunks((*chunk).max(1)) {
                    client.write_all(piece)?;
                    client.flush()?;
                    std::thread::sleep(*every);
                }
                Ok(true)
            }
            Some(Fault::Status(_) | Fault::TooManyRequests { .. }) => unreachable!("answered without forwarding"),
        }
    })();
    let keep = result.unwrap_or(false);
    if !keep && !matches!(fault, Some(Fault::ResetMidBody { .. })) {
        let _ = client.shutdown(Shutdown::Both);
    }
    keep
}
