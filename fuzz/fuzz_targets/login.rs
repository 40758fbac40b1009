//! Login requests (framed as on the wire) through the login state machine; see
//! rtgt_iscsi::fuzzing::login.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rtgt_iscsi::fuzzing::login(data);
});
