#![no_main]
//! The fuzz target of [`sitesync_fuzz_checks::record_state`], which states its properties.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sitesync_fuzz_checks::record_state::check(data));
