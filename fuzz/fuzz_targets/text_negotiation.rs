//! See rtgt_iscsi::fuzzing::text_negotiation for the input layout and the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtgt_iscsi::fuzzing::text_negotiation(data));
