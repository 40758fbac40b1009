//! See rtgt_iscsi::fuzzing::chap_exchange for the input layout and the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtgt_iscsi::fuzzing::chap_exchange(data));
