//! What the integration tests share.

#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The default model as `scripts/setup` installs it. Tests that need it are
/// `#[ignore = "needs scripts/setup"]`; `scripts/test` runs them.
pub fn default_model() -> PathBuf {
    lem_engine::testing::installed("models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf")
}

/// A `lem serve` child, killed on drop.
pub struct Server {
    child: Child,
    /// Its API's base URL (`http://127.0.0.1:PORT/v1`).
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `lem serve --port 0 --model MODEL ARGS...` and waits for the line
/// that gives its address.
pub fn serve(model: &Path, args: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lem"))
        .args(["serve", "--port", "0"])
        .args(args)
        .arg("--model")
        .arg(model)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start lem serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the address line");
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in `{line}`"))
        .to_string();
    Server { child, base }
}

/// Serves `app` (a fake judge, say) on a free loopback port; it lives as
/// long as the returned runtime.
pub fn serve_http(app: axum::Router) -> (tokio::runtime::Runtime, u16) {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("a loopback port");
    let port = listener.local_addr().expect("its address").port();
    rt.spawn(async move { axum::serve(listener, app).await });
    (rt, port)
}
