//! Builds nsnet-pause (pause/pause.rs), the freestanding pause process that
//! nsnet embeds, with the same rustc. It needs panic=abort and its own link
//! flags, which Cargo cannot set for one binary of a package, hence a separate
//! rustc call. On architectures it does not support, an empty file tells nsnet
//! to use its own `__pause` mode instead.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=pause/pause.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let bin = out.join("nsnet-pause");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if arch != "x86_64" || os != "linux" {
        std::fs::write(&bin, b"").expect("writing an empty nsnet-pause");
        return;
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let status = Command::new(rustc)
        .args([
            "--edition=2021",
            "--crate-type=bin",
            "--crate-name=nsnet_pause",
        ])
        .args([
            "-C",
            "panic=abort",
            "-C",
            "opt-level=s",
            "-C",
            "strip=symbols",
        ])
        .args([
            "-C",
            "relocation-model=static",
            "-C",
            "target-feature=+crt-static",
        ])
        .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib"])
        .args([
            "-C",
            "link-arg=-static",
            "-C",
            "link-arg=-Wl,--build-id=none",
        ])
        .arg("-o")
        .arg(&bin)
        .arg("pause/pause.rs")
        .status()
        .expect("running rustc for nsnet-pause");
    assert!(status.success(), "building nsnet-pause failed");
}
