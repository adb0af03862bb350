//! Headless Chromium for the tests that render the HTML report
//! (Debian's package; `scripts/test` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Chromium binary.
pub fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("chromium is not installed: apt-get install chromium (scripts/test does)")
}

/// A headless run with its own profile, no network chatter, no scrollbars.
pub fn headless(chromium: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}
