//! Real proxies in front of Rampart: nginx (`auth_request`) and Caddy (`forward_auth`) from
//! Debian's packages, and a real upstream (`crates/rampart/tests/upstream/echo_app.py`, PyJWT
//! against the JWKS alone), each a child process on a free loopback port, killed on drop.
//!
//! ```ignore
//! let app = TestApp::spawn_with(db, |c| { trust_loopback_proxy(c); /* rules */ }).await;
//! let upstream = Upstream::start(&app.url("/.well-known/jwks.json"), &[APP_HOST]).await;
//! let nginx = Proxy::nginx(&app.url(""), &upstream.url()).await;
//! let res = proxy_client().get(nginx.url("/public/a")).send().await?;   // Host: app.example.com
//! ```
//!
//! The proxies run the configurations the README shows, byte for byte: [`NGINX_SERVER`] and
//! [`CADDYFILE`] are those files (`proxies/` beside this crate), with only the listening
//! address, Rampart's address and the upstream's address replaced. The nginx file is an
//! `upstream` block (kept-alive connections to Rampart) and a `server` block; the test wraps it
//! in a minimal `nginx.conf` whose pid, logs and temporary files live in a temporary directory.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The nginx `upstream` and `server` blocks the README shows (`proxies/nginx.conf`).
pub const NGINX_SERVER: &str = include_str!("../proxies/nginx.conf");
/// The Caddyfile the README shows (`proxies/Caddyfile`).
pub const CADDYFILE: &str = include_str!("../proxies/Caddyfile");
/// Rampart's address in the Caddyfile (its default `server.listen`).
pub const RAMPART_IN_CONFIG: &str = "http://127.0.0.1:8080";
/// Rampart's address in the nginx file's `upstream` block (kept-alive connections).
pub const RAMPART_IN_NGINX: &str = "server 127.0.0.1:8080;";
/// The app's address in the two files.
pub const UPSTREAM_IN_CONFIG: &str = "http://127.0.0.1:8000";
/// The host the two files serve; tests address the proxies by it ([`proxy_client`]).
pub const APP_HOST: &str = "app.example.com";

/// How long a child process gets to start listening.
pub(crate) const START: Duration = Duration::from_secs(15);

/// The upstream app, on the path the tests keep it at.
pub fn echo_app_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rampart/tests/upstream/echo_app.py")
}

/// Makes Rampart believe the loopback proxies' `X-Forwarded-For` (the client's address).
pub fn trust_loopback_proxy(c: &mut rampart_config::Config) {
    c.server.trusted_proxies = vec!["127.0.0.1/32".parse().expect("a CIDR")];
}

/// A client for the proxies: `app.example.com` resolves to loopback, redirects are not followed.
pub fn proxy_client() -> reqwest::Client {
    reqwest::Client::builder()
        .resolve(APP_HOST, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A child process killed (and reaped) on drop.
#[derive(Debug)]
pub(crate) struct Running {
    name: &'static str,
    pub(crate) child: Child,
    /// A gentler signal first (nginx's master then stops its workers), SIGKILL after a while.
    stop_signal: Option<&'static str>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(signal) = self.stop_signal {
            let _ = Command::new("kill")
                .args([signal, &self.child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            eprintln!("{} did not stop on {signal}; killing it", self.name);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    pub(crate) fn spawn(name: &'static str, cmd: &mut Command, stop_signal: Option<&'static str>) -> Running {
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}; see .ci/run"));
        Running { name, child, stop_signal }
    }

    /// Waits until `port` accepts connections; panics with `log` if the process exits first.
    pub(crate) async fn wait_for(&mut self, port: u16, log: impl Fn() -> String) {
        let deadline = Instant::now() + START;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}) before listening on {port}:\n{}", self.name, log());
            }
            if tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await.is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "{} not listening on {port} within {START:?}:\n{}", self.name, log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()).expect("a free port").port()
}

/// Replaces the one `from` in `text` (a template that lost it is a failing test, not a proxy
/// quietly running another configuration).
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "the configuration must name {from:?} exactly once:\n{text}");
    text.replacen(from, to, 1)
}

/// The echo app: verifies every request's assertion with PyJWT against the JWKS alone and
/// answers JSON with what it saw (see the script's docstring).
#[derive(Debug)]
pub struct Upstream {
    pub addr: SocketAddr,
    _process: Running,
}

impl Upstream {
    /// Starts the app against `jwks_url`, accepting assertions for any of `audiences`.
    pub async fn start(jwks_url: &str, audiences: &[&str]) -> Upstream {
        let mut cmd = Command::new("python3");
        cmd.arg(echo_app_path())
            .arg(jwks_url)
            .arg(audiences.join(","))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut process = Running::spawn("the upstream (python3 echo_app.py)", &mut cmd, None);
        let stdout = process.child.stdout.take().expect("piped stdout");
        // Its first line names its port; a blocking read, off the runtime's threads.
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            line
        });
        let line = tokio::time::timeout(START, line).await.expect("the upstream starts in time").expect("read");
        let port: u16 = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the upstream did not start (PyJWT installed? see .ci/run): {line:?}"));
        process.wait_for(port, String::new).await;
        Upstream { addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)), _process: process }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Which proxy a [`Proxy`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    Nginx,
    Caddy,
}

/// nginx or Caddy, serving `app.example.com` on a loopback port in front of an upstream and
/// asking Rampart about every request.
#[derive(Debug)]
pub struct Proxy {
    pub kind: ProxyKind,
    pub port: u16,
    dir: TempDir,
    _process: Running,
}

impl Proxy {
    /// nginx with [`NGINX_SERVER`], Rampart at `rampart` and the app at `upstream`
    /// (`http://host:port`).
    pub async fn nginx(rampart: &str, upstream: &str) -> Proxy {
        Self::start(ProxyKind::Nginx, rampart, upstream).await
    }

    /// Caddy with [`CADDYFILE`], Rampart at `rampart` and the app at `upstream`.
    pub async fn caddy(rampart: &str, upstream: &str) -> Proxy {
        Self::start(ProxyKind::Caddy, rampart, upstream).await
    }

    async fn start(kind: ProxyKind, rampart: &str, upstream: &str) -> Proxy {
        let rampart = rampart.trim_end_matches('/');
        // A port picked here may be taken before the proxy binds it: then try another.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port();
            let dir = tempfile::tempdir().expect("temp dir");
            // nginx's workers run as `nobody` when started by root: they must reach the files.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
            }
            let (mut process, log) = match kind {
                ProxyKind::Nginx => nginx(dir.path(), port, rampart, upstream),
                ProxyKind::Caddy => caddy(dir.path(), port, rampart, upstream),
            };
            let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
            // A port taken in the meantime shows as an early exit naming it.
            if attempt < 3 && exited_on_a_taken_port(&mut process, port, &read_log).await {
                continue;
            }
            process.wait_for(port, read_log).await;
            return Proxy { kind, port, dir, _process: process };
        }
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            ProxyKind::Nginx => "nginx",
            ProxyKind::Caddy => "caddy",
        }
    }

    /// `http://app.example.com:<port><path>` (send it with [`proxy_client`]).
    pub fn url(&self, path: &str) -> String {
        format!("http://{APP_HOST}:{}{path}", self.port)
    }

    /// The proxy's own log, for a failing test's message.
    pub fn log(&self) -> String {
        let file = match self.kind {
            ProxyKind::Nginx => "error.log",
            ProxyKind::Caddy => "caddy.log",
        };
        std::fs::read_to_string(self.dir.path().join(file)).unwrap_or_default()
    }
}

/// Whether the process exits within a moment, its log blaming the address (then the caller
/// picks another port).
async fn exited_on_a_taken_port(process: &mut Running, port: u16, log: &impl Fn() -> String) -> bool {
    let deadline = Instant::now() + Duration::from_millis(300);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await.is_ok() {
            return false;
        }
        if let Ok(Some(_)) = process.child.try_wait() {
            return log().contains("in use");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// nginx: the README's `upstream` and `server` blocks in a minimal main configuration under `dir`.
fn nginx(dir: &Path, port: u16, rampart: &str, upstream: &str) -> (Running, PathBuf) {
    let server = replace_once(NGINX_SERVER, "listen 80;", &format!("listen 127.0.0.1:{port};"));
    let rampart_addr = rampart.trim_start_matches("http://").trim_end_matches('/');
    let server = replace_once(&server, RAMPART_IN_NGINX, &format!("server {rampart_addr};"));
    let server = replace_once(&server, UPSTREAM_IN_CONFIG, upstream);
    let d = dir.display();
    let conf = format!(
        "worker_processes 1;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n\
         access_log off;\n\
         client_body_temp_path {d}/client_body_temp;\n\
         proxy_temp_path {d}/proxy_temp;\n\
         fastcgi_temp_path {d}/fastcgi_temp;\n\
         uwsgi_temp_path {d}/uwsgi_temp;\n\
         scgi_temp_path {d}/scgi_temp;\n\
         {server}\n\
         }}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).expect("write nginx.conf");
    let mut cmd = Command::new("nginx");
    cmd.arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&path)
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    (Running::spawn("nginx", &mut cmd, Some("-TERM")), dir.join("error.log"))
}

/// Caddy: the README's Caddyfile, served over plain HTTP on loopback, without its admin API
/// or automatic HTTPS, its data and configuration directories under `dir`.
fn caddy(dir: &Path, port: u16, rampart: &str, upstream: &str) -> (Running, PathBuf) {
    let site =
        replace_once(CADDYFILE, &format!("{APP_HOST} {{"), &format!("http://{APP_HOST}:{port} {{\n\tbind 127.0.0.1"));
    let site = replace_once(&site, RAMPART_IN_CONFIG, rampart);
    let site = replace_once(&site, UPSTREAM_IN_CONFIG, upstream);
    let conf = format!("{{\n\tadmin off\n\tauto_https off\n}}\n\n{site}");
    let path = dir.join("Caddyfile");
    std::fs::write(&path, conf).expect("write Caddyfile");
    let log = dir.join("caddy.log");
    let log_file = std::fs::File::create(&log).expect("caddy.log");
    let mut cmd = Command::new("caddy");
    cmd.args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&path)
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file);
    (Running::spawn("caddy", &mut cmd, None), log)
}
