#![no_main]
//! The fuzz target of [`sitesync_fuzz_checks::config_files`], which states its properties.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sitesync_fuzz_checks::config_files::check(data));
