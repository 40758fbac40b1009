//! Management messages as the daemon reads them off its control socket: 4-byte big-endian length,
//! then a JSON body decoded into a `Request` (and, for the client side, a `Response`). A message
//! that decodes must encode and decode back to the same value.
#![no_main]

use rtgt_mgmt::{decode, encode, frame_length, Request, Response};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while rest.len() >= 4 {
        let prefix = [rest[0], rest[1], rest[2], rest[3]];
        let Ok(len) = frame_length(prefix) else { return };
        let Some(body) = rest.get(4..4 + len) else { return };
        rest = &rest[4 + len..];
        if let Ok(request) = decode::<Request>(body) {
            let frame = encode(&request).expect("a decoded request encodes");
            assert_eq!(frame_length([frame[0], frame[1], frame[2], frame[3]]).ok(), Some(frame.len() - 4));
            assert_eq!(decode::<Request>(&frame[4..]).ok(), Some(request));
        }
        if let Ok(response) = decode::<Response>(body) {
            let frame = encode(&response).expect("a decoded response encodes");
            assert_eq!(decode::<Response>(&frame[4..]).ok(), Some(response));
        }
    }
});
