#![no_main]
//! The fuzz target of [`sitesync_fuzz_checks::pull_query`], which states its properties.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sitesync_fuzz_checks::pull_query::check(data));
