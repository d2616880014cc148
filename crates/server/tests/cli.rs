//! The real `gatehouse` binary end to end: `server` on a real port, `login`, `tokens
//! create|list|remove`, what lands in the SQLite file, and graceful shutdown on SIGTERM.

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::Path,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn gatehouse(config_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env("CODER_CONFIG_DIR", config_dir)
        .env_remove("CODER_SESSION_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Starts `gatehouse server` with `args` (SQLite in `data`, no provisioners) and waits for
/// its first line, which it returns; the rest of stdout is closed, and the server must keep
/// running although its next writes to it fail.
fn spawn_server(args: &[&std::ffi::OsStr], data: &Path) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("server")
        .args(args)
        .args(["--provisioner-daemons", "0", "--data-dir"])
        .arg(data)
        .env_remove("CODER_PG_CONNECTION_URL")
        .env_remove("CODER_ACCESS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server { child };
    let ready = BufReader::new(stdout).lines().next().unwrap().unwrap();
    (server, ready)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn server_login_tokens_and_graceful_shutdown() {
    let dir = std::env::temp_dir().join(format!("gatehouse-cli-{}", uuid::Uuid::new_v4().simple()));
    let data_dir = dir.join("data");
    let config_dir = dir.join("config");
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let url = format!("http://{address}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["server", "--http-address", &address, "--data-dir"])
        .arg(&data_dir)
        .env_remove("CODER_PG_CONNECTION_URL")
        .env_remove("CODER_ACCESS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut server = Server { child };

    // The server prints its access URL when it is ready.
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    assert_eq!(first, format!("Started HTTP listener at {url}"));

    let out = gatehouse(&config_dir, &["tokens", "list"]);
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr).trim(),
        "error: You are not logged in. Run `gatehouse login <url>` first."
    );

    let out = gatehouse(
        &config_dir,
        &[
            "login",
            &url,
            "--first-user-email",
            "admin@example.com",
            "--first-user-username",
            "admin",
            "--first-user-password",
            "SomeSecurePassword!",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Welcome to Gatehouse, admin!"),
        "{}",
        text(&out.stdout)
    );

    let out = gatehouse(
        &config_dir,
        &[
            "tokens",
            "create",
            "--name",
            "ci",
            "--scope",
            "workspace:read",
            "--lifetime",
            "2d",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    assert_eq!(token.len(), 33, "{token}");

    let out = gatehouse(&config_dir, &["tokens", "create", "--scope", "bogus"]);
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr).trim(),
        "error: could not create the token: Failed to create API key.\n  invalid or unsupported API key scope: \"bogus\""
    );

    let out = gatehouse(&config_dir, &["tokens", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    assert!(
        listing.lines().next().unwrap().starts_with("ID"),
        "{listing}"
    );
    assert!(
        listing.contains(" ci ") && listing.contains("workspace:read"),
        "{listing}"
    );

    // The database file holds no secret and no password in plain text.
    let dump = Command::new("sqlite3")
        .arg(data_dir.join("gatehouse.db"))
        .arg(".dump")
        .output()
        .unwrap();
    assert!(dump.status.success());
    let dump = text(&dump.stdout);
    let session = std::fs::read_to_string(config_dir.join("session")).unwrap();
    assert!(dump.contains("CREATE TABLE api_keys"));
    assert!(!dump.contains(token.split_once('-').unwrap().1));
    assert!(!dump.contains(session.trim().split_once('-').unwrap().1));
    assert!(!dump.contains("SomeSecurePassword!"));

    let out = gatehouse(&config_dir, &["tokens", "remove", "ci"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "Token has been deleted.");
    let out = gatehouse(&config_dir, &["tokens", "list"]);
    assert_eq!(text(&out.stdout).trim(), "No tokens found.");

    // SIGTERM: the server finishes and exits cleanly.
    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(server.child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A slow-loris client that never finishes its request head is cut off after
/// `--http-read-header-timeout`, and the server keeps serving others.
#[test]
fn slow_request_heads_are_cut_off() {
    use std::io::{Read, Write};
    let dir =
        std::env::temp_dir().join(format!("gatehouse-slow-{}", uuid::Uuid::new_v4().simple()));
    let address = format!("127.0.0.1:{}", free_port());
    let args = [
        "--http-address",
        &address,
        "--http-read-header-timeout",
        "1s",
    ];
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    let (_server, _ready) = spawn_server(&args, &dir.join("data"));

    // The timer runs from the connection's start.
    let started = Instant::now();
    let mut slow = std::net::TcpStream::connect(&address).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = Vec::new();
    // The server closes the connection (possibly after a 408): the read ends.
    let read = slow.read_to_end(&mut buf);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "cut off too early: {waited:?} ({read:?}, {:?})",
        String::from_utf8_lossy(&buf)
    );
    assert!(waited < Duration::from_secs(8), "not cut off: {waited:?}");
    let head = String::from_utf8_lossy(&buf);
    assert!(
        head.is_empty() || head.starts_with("HTTP/1.1 408"),
        "{head}"
    );

    let mut fresh = std::net::TcpStream::connect(&address).unwrap();
    fresh
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    fresh.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A trusted-proxy setting that cannot be understood stops the server at start-up with a
/// message naming the flag, rather than silently believing no header (or every header).
#[test]
fn bad_trusted_proxy_settings_fail_fast() {
    let dir =
        std::env::temp_dir().join(format!("gatehouse-proxy-{}", uuid::Uuid::new_v4().simple()));
    for (args, expected) in [
        (
            &["--proxy-trusted-origins", "10.0.0.0/33"][..],
            "--proxy-trusted-origins",
        ),
        (
            &["--proxy-trusted-headers", "X Forwarded"][..],
            "--proxy-trusted-headers",
        ),
        (
            &["--proxy-trusted-headers", "X-Forwarded-For"][..],
            "must be set together",
        ),
    ] {
        let data = dir.join("data");
        let address = format!("127.0.0.1:{}", free_port());
        let mut all = vec!["server", "--data-dir", data.to_str().unwrap()];
        all.extend(["--http-address", &address]);
        all.extend(args);
        let out = gatehouse(&dir, &all);
        assert!(!out.status.success(), "{args:?} started");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A misconfigured external auth provider stops the server, naming the variable.
#[test]
fn bad_external_auth_settings_fail_fast() {
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-extauth-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let address = format!("127.0.0.1:{}", free_port());
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["server", "--http-address", &address, "--data-dir"])
        .arg(dir.join("data"))
        .env("CODER_CONFIG_DIR", &dir)
        .env("CODER_EXTERNAL_AUTH_0_TYPE", "github")
        .env("CODER_EXTERNAL_AUTH_0_PKCE_METHODS", "plain")
        .env("CODER_EXTERNAL_AUTH_0_CLIENT_ID", "x")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("CODER_EXTERNAL_AUTH_0_PKCE_METHODS: \"plain\" is not supported"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--tls-enable` (issue #24): the binary serves HTTPS on `--tls-address` beside HTTP on
/// `--http-address`, its access URL defaults to the HTTPS one, and curl trusting the test
/// CA gets through; a certificate that cannot be read stops it, naming the flag.
#[test]
fn the_server_serves_https_beside_http() {
    use std::io::{Read, Write};
    let ca = crate::tls::TestCa::new("cli");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"], crate::tls::Validity::Current);
    let dir =
        std::env::temp_dir().join(format!("gatehouse-https-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    let http = format!("127.0.0.1:{}", free_port());
    let https = format!("127.0.0.1:{}", free_port());
    let args: Vec<&std::ffi::OsStr> = vec![
        "--http-address".as_ref(),
        http.as_ref(),
        "--tls-enable=true".as_ref(),
        "--tls-address".as_ref(),
        https.as_ref(),
        "--tls-cert-file".as_ref(),
        cert.as_os_str(),
        "--tls-key-file".as_ref(),
        key.as_os_str(),
    ];
    let (_server, ready) = spawn_server(&args, &dir.join("data"));
    assert_eq!(ready, format!("Started HTTP listener at https://{https}"));
    let out = Command::new("curl")
        .args(["-s", "--noproxy", "*", "--max-time", "10", "--cacert"])
        .arg(&ca.file)
        .arg(format!(
            "https://{https}/.well-known/oauth-authorization-server"
        ))
        .output()
        .unwrap();
    let metadata: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(metadata["issuer"], format!("https://{https}"));
    let mut plain = std::net::TcpStream::connect(&http).unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    plain.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Anything else over plain HTTP is sent to the https access URL, path and query kept.
    let mut plain = std::net::TcpStream::connect(&http).unwrap();
    plain
        .write_all(b"GET /api/v2/buildinfo?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    plain.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 307"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains(&format!(
            "\r\nlocation: https://{https}/api/v2/buildinfo?x=1\r\n"
        )),
        "{answer}"
    );
    // The CLI signs in over HTTPS trusting the CA as Go programs do (SSL_CERT_FILE), and
    // refuses the certificate without it.
    let login = |trust: Option<&Path>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        cmd.args(["login", &format!("https://{https}")])
            .args(["--first-user-email", "admin@example.com"])
            .args(["--first-user-username", "admin"])
            .args(["--first-user-password", "SomeSecurePassword!"])
            .env("CODER_CONFIG_DIR", dir.join("cli-config"))
            .env_remove("CODER_SESSION_TOKEN")
            .env_remove("SSL_CERT_DIR")
            .stdin(Stdio::null());
        match trust {
            Some(file) => cmd.env("SSL_CERT_FILE", file),
            None => cmd.env_remove("SSL_CERT_FILE"),
        };
        cmd.output().unwrap()
    };
    let untrusted = login(None);
    assert!(!untrusted.status.success());
    assert!(
        text(&untrusted.stderr).contains("UnknownIssuer"),
        "{}",
        text(&untrusted.stderr)
    );
    let trusted = login(Some(&ca.file));
    assert!(trusted.status.success(), "{}", text(&trusted.stderr));
    assert!(text(&trusted.stdout).contains("Welcome to Gatehouse, admin!"));
    // SIGHUP reads the certificate again, even one written back with its old timestamp
    // (which the file watch would not notice): the renewed one names one host more.
    let renewed = ca.leaf(
        &["localhost", "127.0.0.1", "renewed.test"],
        crate::tls::Validity::Current,
    );
    let curl_renewed = || {
        Command::new("curl")
            .args(["-s", "--noproxy", "*", "--max-time", "10", "--cacert"])
            .arg(&ca.file)
            .arg("--resolve")
            .arg(format!(
                "renewed.test:{}:127.0.0.1",
                https.rsplit(':').next().unwrap()
            ))
            .arg(format!(
                "https://renewed.test:{}/healthz",
                https.rsplit(':').next().unwrap()
            ))
            .output()
            .unwrap()
    };
    assert_ne!(text(&curl_renewed().stdout), "OK");
    let stamp = |path: &Path| std::fs::metadata(path).unwrap().modified().unwrap();
    let (cert_stamp, key_stamp) = (stamp(&cert), stamp(&key));
    for (path, pem, when) in [
        (&cert, &renewed.cert_pem, cert_stamp),
        (&key, &renewed.key_pem, key_stamp),
    ] {
        std::fs::write(path, pem).unwrap();
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_ne!(
        text(&curl_renewed().stdout),
        "OK",
        "reloaded without SIGHUP"
    );
    let hup = Command::new("kill")
        .args(["-HUP", &_server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while text(&curl_renewed().stdout) != "OK" {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the certificate"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A TLS start that must be refused: it exits, and stderr names why.
    let refused = |cert: &Path, extra: &[&str], data: &str| {
        let mut args = vec![
            "server".to_owned(),
            "--http-address".to_owned(),
            format!("127.0.0.1:{}", free_port()),
            "--tls-enable=true".to_owned(),
            "--tls-address".to_owned(),
            format!("127.0.0.1:{}", free_port()),
            "--tls-cert-file".to_owned(),
            cert.to_str().unwrap().to_owned(),
            "--tls-key-file".to_owned(),
            key.to_str().unwrap().to_owned(),
            "--data-dir".to_owned(),
            dir.join(data).to_str().unwrap().to_owned(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = gatehouse(&dir, &args);
        assert!(!out.status.success());
        text(&out.stderr)
    };
    // A certificate that is not valid for the access URL's host stops the start.
    let stderr = refused(&cert, &["--access-url", "https://dev.example.com"], "data3");
    assert!(
        stderr.contains("--tls-cert-file: no certificate is valid for dev.example.com"),
        "{stderr}"
    );
    // A certificate that is not there stops the start, naming the flag.
    let stderr = refused(&dir.join("missing.crt"), &[], "data2");
    assert!(stderr.contains("--tls-cert-file"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
