//! tgt-admin's targets.conf parser (crates/tgtadm/src/admin/conf.rs) and its checks into target
//! specs (spec.rs), compiled here from their source files since tgt-admin is a binary. A file that
//! parses and checks must survive `--dump`: the dump parses back into the same specs.
#![no_main]

// Flat, as in tgt-admin's main.rs, so that their `super::` paths resolve.
#[allow(dead_code)]
#[path = "../../crates/tgtadm/src/admin/conf.rs"]
mod conf;
#[allow(dead_code)]
#[path = "../../crates/tgtadm/src/admin/dump.rs"]
mod dump;
#[allow(dead_code)]
#[path = "../../crates/tgtadm/src/admin/spec.rs"]
mod spec;

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
