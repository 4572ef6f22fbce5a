//! Builds the kernel fast path's eBPF program (`bpf/fastpath.bpf.c`) with the system's clang
//! and libbpf headers into an object that `io::fastpath` embeds (`include_bytes!`) and loads
//! at run time. Without clang or the headers the engine still builds: the object is empty,
//! `cfg(ngmedia_bpf)` is unset, and `--fast-path=auto` says at start that this build has no
//! fast path.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "bpf/fastpath.bpf.c";
    println!("cargo::rerun-if-changed={src}");
    println!("cargo::rerun-if-env-changed=NGMEDIA_BPF_CLANG");
    println!("cargo::rustc-check-cfg=cfg(ngmedia_bpf)");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let obj = out.join("fastpath.bpf.o");
    let clang = std::env::var("NGMEDIA_BPF_CLANG").unwrap_or_else(|_| "clang".into());
    // The kernel's UAPI headers include <asm/types.h>, which Debian keeps under the
    // multiarch directory of the build machine's architecture.
    let multiarch = match std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86_64-linux-gnu",
        Ok("aarch64") => "aarch64-linux-gnu",
        Ok("riscv64") => "riscv64-linux-gnu",
        Ok("powerpc64") => "powerpc64le-linux-gnu",
        _ => "x86_64-linux-gnu",
    };
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-I/usr/include/{multiarch}"))
        .args(["-c", src, "-o"])
        .arg(&obj)
        .status();
    match status {
        Ok(s) if s.success() => println!("cargo::rustc-cfg=ngmedia_bpf"),
        other => {
            let why = match other {
                Ok(s) => format!("{clang} failed ({s})"),
                Err(e) => format!("{clang} not found ({e})"),
            };
            println!(
                "cargo::warning=kernel fast path not built: {why}; install clang, llvm and \
                 libbpf-dev for it"
            );
            std::fs::write(&obj, []).expect("write an empty BPF object");
        }
    }
}
