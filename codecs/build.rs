//! Links the system libbcg729 for the `g729` feature. Debian ships `libbcg729.pc` with
//! libbcg729-dev; without it the build stops here with pkg-config's message rather than at
//! link time with an unresolved symbol.
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
}
