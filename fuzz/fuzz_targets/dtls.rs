#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ngmedia_fuzz::targets::dtls(data));
