//! The web pages in a real Chromium: runs the Python journeys in `tests/browser/` (Playwright
//! for Python driving Debian's `chromium`, axe-core on every page, an SMTP sink) against this
//! build's `rampart` binary, one server per Python module. Screenshots (desktop 1280 and phone
//! 390 wide) go to `target/screenshots/`.
//!
//! Needs `python3` with `playwright`, `axe-playwright-python` and `pyotp`, and
//! `/usr/bin/chromium` (`.ci/run` installs them). Elsewhere the test skips with a note; with
//! `CI` set it fails instead.

use std::path::PathBuf;
use std::process::Command;

fn ready() -> Result<(), String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&chromium).exists() {
        return Err(format!("no browser at {chromium} (apt-get install chromium)"));
    }
    let probe = Command::new("python3")
        .args(["-c", "import playwright, axe_playwright_python, pyotp"])
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !probe.status.success() {
        return Err(format!(
            "python3 lacks playwright, axe-playwright-python or pyotp: {}",
            String::from_utf8_lossy(&probe.stderr).lines().last().unwrap_or_default()
        ));
    }
    Ok(())
}

#[test]
fn journeys_in_chromium() {
    if let Err(why) = ready() {
        assert!(std::env::var_os("CI").is_none(), "CI must run the browser tests: {why}");
        eprintln!("skipped: {why}");
        return;
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = manifest.join("tests/browser");
    let shots = manifest.join("../../target/screenshots");
    let out = Command::new("python3")
        .args(["-m", "unittest", "-v", "test_journeys", "test_pages", "test_admin", "test_federation"])
        .current_dir(&dir)
        .env("RAMPART_BIN", env!("CARGO_BIN_EXE_rampart"))
        .env("SCREENSHOTS", &shots)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser journeys failed:\n{text}");
    assert!(text.contains("Ran 6 tests"), "every journey ran:\n{text}");
}
