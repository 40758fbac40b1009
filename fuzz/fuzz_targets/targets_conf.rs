//! tgt-admin's targets.conf parser (rtgt_tgtadm::admin::conf) and its checks into target specs
//! (admin::spec), from the tgtadm library. A file that parses and checks must survive `--dump`: the
//! dump parses back into the same specs.
#![no_main]

use rtgt_tgtadm::admin::{conf, dump, spec};
use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // `include` reads files named by the input: the fuzzer would wander the file system.
    if text.to_ascii_lowercase().contains("include") {
        return;
    }
    let file = Path::new("/nonexistent/targets.conf");
    let mut parsed = conf::ConfFile::default();
    if conf::parse_into(text, file, &mut parsed, 0).is_err() {
        return;
    }
    let Ok((targets, discovery)) = spec::from_conf(&parsed) else { return };
    let dumped = dump::dump(&targets, &discovery);
    let mut again = conf::ConfFile::default();
    conf::parse_into(&dumped, file, &mut again, 0).unwrap_or_else(|e| panic!("dump does not parse: {e}\n{dumped}"));
    let back = spec::from_conf(&again).unwrap_or_else(|e| panic!("dump does not check: {e:?}\n{dumped}"));
    assert_eq!(back, (targets, discovery), "dump changed the configuration:\n{dumped}");
});
