//! The API from outside (issue 25): `tests/conformance/run.py` runs a client generated from
//! `docs/openapi.json` by openapi-python-client against this build's `rampart` binary, and
//! schemathesis over every operation, anonymously and as an administrator, with its checks for
//! server errors, status codes, content types and response schemas. Zero failures pass.
//!
//! Needs the virtualenv `tests/conformance/.venv` with `tests/conformance/requirements.txt`
//! (`.ci/run` makes it). Elsewhere the test skips with a note; with `CI` set it fails instead.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn generated_client_and_schemathesis_against_the_binary() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = manifest.join("tests/conformance");
    let python = dir.join(".venv/bin/python");
    let probe = Command::new(&python).args(["-c", "import schemathesis, openapi_python_client"]).output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        let why = format!("{} lacks schemathesis or openapi-python-client (see requirements.txt)", python.display());
        assert!(std::env::var_os("CI").is_none(), "CI must run the conformance tests: {why}");
        eprintln!("skipped: {why}");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(&python)
        .args(["run.py"])
        .current_dir(&dir)
        .env("RAMPART_BIN", env!("CARGO_BIN_EXE_rampart"))
        .env("OPENAPI", manifest.join("../../docs/openapi.json"))
        .env("WORK", work.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "conformance failed:\n{text}");
    assert!(text.contains("Ran 3 tests"), "every part ran:\n{text}");
    eprintln!("{}", text.lines().filter(|l| l.starts_with("schemathesis")).collect::<Vec<_>>().join("\n"));
}
