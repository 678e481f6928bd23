//! The real servers the end-to-end tests start (Prometheus, Alertmanager, the
//! Pushgateway): where their binaries are, and a free loopback port for one.
//! `#[path]`-included by each test crate that starts one.
#![allow(dead_code)] // each test crate uses a different subset

use std::path::PathBuf;

/// `name` on PATH, or a panic that names the Debian package `scripts/test.sh` installs.
pub fn installed(name: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("{name} is not installed: run scripts/test.sh, which installs Debian's `{package}` package")
    })
}

/// Prometheus, where the demo finds it.
pub fn prometheus() -> PathBuf {
    shakedown::demo::find_prometheus().unwrap_or_else(|| installed("prometheus", "prometheus"))
}

/// Alertmanager, where the demo finds it.
pub fn alertmanager() -> PathBuf {
    shakedown::demo::find_alertmanager()
        .unwrap_or_else(|| installed("prometheus-alertmanager", "prometheus-alertmanager"))
}

pub fn pushgateway() -> PathBuf {
    installed("prometheus-pushgateway", "prometheus-pushgateway")
}

/// A loopback port free a moment ago (the server started on it binds it for good).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}
