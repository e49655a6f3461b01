//! Lays out the code `rampart serve` runs at start-up side by side at the start of `.text`
//! (`startup.order`, written by `bench/startup-order`). Scattered over the whole 27 MB `.text`,
//! that code made about 18 MiB of the binary resident in an idle server (the kernel maps file
//! pages 64 KiB around each fault); side by side, about 4.5 MiB.
//!
//! `--symbol-ordering-file` is an lld option, so the list is passed only where rustc links
//! with its own lld (x86-64 Linux, GNU, from Rust 1.90, with the toolchain's `gcc-ld/ld.lld`)
//! and nothing overrides the linker; any other build links as before, only without the
//! layout. Names the linker does not find (a stale list, a debug build) are skipped silently:
//! the list only decides the order of what it names.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=startup.order");
    println!("cargo:rerun-if-changed=build.rs");
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER", "RUSTC_LINKER"]
    {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if std::env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu") || !links_with_rust_lld() {
        return;
    }
    let Ok(dir) = std::env::var("CARGO_MANIFEST_DIR") else { return };
    println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={dir}/startup.order");
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}

/// Whether this build links through the toolchain's own lld: rustc 1.90 or later (its default
/// for this target), the toolchain ships `gcc-ld/ld.lld` (distribution builds may not), and no
/// linker, linker flavour or `-fuse-ld` is configured instead.
fn links_with_rust_lld() -> bool {
    if std::env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some()
        || std::env::var_os("RUSTC_LINKER").is_some()
    {
        return false;
    }
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if ["linker", "fuse-ld", "link-self-contained"].iter().any(|f| flags.contains(f)) {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let output = |args: &[&str]| {
        Command::new(&rustc)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
    };
    let minor = output(&["-vV"]).and_then(|v| {
        let release = v.lines().find_map(|l| l.strip_prefix("release: "))?.to_string();
        let mut parts = release.split('.');
        (parts.next()? == "1").then_some(())?;
        parts.next()?.parse::<u32>().ok()
    });
    let Some(sysroot) = output(&["--print", "sysroot"]) else { return false };
    let lld = Path::new(sysroot.trim()).join("lib/rustlib/x86_64-unknown-linux-gnu/bin/gcc-ld/ld.lld");
    minor.is_some_and(|m| m >= 90) && lld.exists()
}
