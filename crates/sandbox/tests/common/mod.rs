//! Helpers shared by the sandbox integration tests.
#![allow(dead_code)]

use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use shakedown_sandbox::{SandboxConfig, SandboxHandle};

pub const DEADLINE: Duration = Duration::from_secs(20);

/// The kubectl versions the fidelity tests run with: the newest and the oldest
/// supported client.
pub const KUBECTL_VERSIONS: [&str; 2] = ["1.33", "1.27"];

/// The kubectl binaries to test with: versioned ones (`kubectl.1.33`, as the gcloud
/// dispatcher ships them) if present, else the `kubectl` on PATH.
pub fn kubectls() -> Vec<std::path::PathBuf> {
    use std::path::PathBuf;
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(PathBuf::from("/usr/lib/google-cloud-sdk/bin"));
    let find = |name: &str| dirs.iter().map(|d| d.join(name)).find(|p| p.is_file());
    let versioned: Vec<PathBuf> = KUBECTL_VERSIONS
        .iter()
        .filter_map(|v| find(&format!("kubectl.{v}")))
        .collect();
    if !versioned.is_empty() {
        return versioned;
    }
    match find("kubectl") {
        Some(plain) => vec![plain],
        None => panic!(
            "kubectl is not installed: these tests need a real kubectl on PATH \
             (run scripts/test.sh, which installs Debian's kubernetes-client)"
        ),
    }
}

/// The shop topology with short start-up and shutdown delays, so tests run quickly.
pub fn fast_shop() -> SandboxConfig {
    let mut config = SandboxConfig::shop();
    config.timings.startup_delay = Duration::from_millis(300);
    config.timings.shutdown_delay = Duration::from_millis(200);
    config
}

pub async fn client(handle: &SandboxHandle) -> Client {
    let kubeconfig = Kubeconfig::from_yaml(&handle.kubeconfig_yaml()).expect("kubeconfig parses");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig loads");
    Client::try_from(config).expect("client builds")
}

/// A response read off the wire.
pub struct RawResponse {
    pub code: u16,
    pub headers: String,
    pub body: String,
}

/// A bare HTTP/1.1 exchange, for asserting on codes, headers and bodies that a
/// client library would retry, negotiate or decode away.
pub async fn raw(
    handle: &SandboxHandle,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> RawResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(handle.addr)
        .await
        .expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n{body}",
        handle.addr,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, rest) = response
        .split_once("\r\n\r\n")
        .expect("a complete response");
    let code = head[9..12].parse().expect("status code");
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    RawResponse {
        code,
        headers: head.to_owned(),
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || tail.len() < size {
            break;
        }
        out.push_str(&tail[..size]);
        rest = tail[size..].trim_start_matches("\r\n");
    }
    out
}
