#![no_main]
//! The fuzz target of [`sitesync_fuzz_checks::api_json`], which states its properties.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sitesync_fuzz_checks::api_json::check(data));
