//! Lays out the code `rampart serve` runs at start-up side by side at the start of `.text`
//! (`startup.order`, written by `bench/startup-order`). Scattered over the whole 27 MB `.text`,
//! that code made about 18 MiB of the binary resident in an idle server (the kernel maps file
//! pages 64 KiB around each fault); side by side, about 4.5 MiB.
//!
//! Only where rustc links with lld by default (x86-64 Linux, GNU): `--symbol-ordering-file` is
//! an lld option. Names the linker does not find (a stale list, a debug build) are skipped
//! silently: the list only decides the order of what it names.

fn main() {
    println!("cargo:rerun-if-changed=startup.order");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu") {
        return;
    }
    let Ok(dir) = std::env::var("CARGO_MANIFEST_DIR") else { return };
    println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={dir}/startup.order");
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}
