//! Links the system libraries behind the codec features: libbcg729 for `g729`, libspandsp for
//! `t38` (G.722 is ngmedia's own code; its differential test uses the libspandsp that `t38`
//! links), libopencore-amrnb, libopencore-amrwb and libvo-amrwbenc for `amr`.
//! Debian ships their `.pc` files with the `-dev` packages; without one the build stops here
//! with pkg-config's message rather than at link time with an unresolved symbol.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_G729").is_some() {
        if let Err(e) = pkg_config::Config::new()
            .atleast_version("1.0")
            .probe("libbcg729")
        {
            panic!("feature `g729` needs libbcg729 (apt-get install libbcg729-dev): {e}");
        }
    }
    if std::env::var_os("CARGO_FEATURE_T38").is_some() {
        // 0.0.6 is the first release with the g722_*_free entry points we call.
        if let Err(e) = pkg_config::Config::new()
            .atleast_version("0.0.6")
            .probe("spandsp")
        {
            panic!("feature `t38` needs libspandsp (apt-get install libspandsp-dev): {e}");
        }
    }
    if std::env::var_os("CARGO_FEATURE_AMR").is_some() {
        for (lib, package) in [
            ("opencore-amrnb", "libopencore-amrnb-dev"),
            ("opencore-amrwb", "libopencore-amrwb-dev"),
            ("vo-amrwbenc", "libvo-amrwbenc-dev"),
        ] {
            if let Err(e) = pkg_config::Config::new().probe(lib) {
                panic!("feature `amr` needs {lib} (apt-get install {package}): {e}");
            }
        }
    }
    if std::env::var_os("CARGO_FEATURE_SPEEX").is_some() {
        if let Err(e) = pkg_config::Config::new()
            .atleast_version("1.2")
            .probe("speex")
        {
            panic!("feature `speex` needs libspeex (apt-get install libspeex-dev): {e}");
        }
    }
}
