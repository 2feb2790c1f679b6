#![no_main]
//! See fuzz/README.md; the checks live in fuzz/src/lib.rs.

libfuzzer_sys::fuzz_target!(|data: &[u8]| nsnet_fuzz::cni_config(data));
