//! tgt-admin's dump as a fixed point over generated configurations: odd account names, memory
//! and null stores, write-cache off and target parameters, built through tgtadm, dumped, executed
//! on a fresh daemon (and replayed from --pretend) and dumped again.

use super::{ok, tgt_admin, write};
use crate::common::{self, bin_dir, Tgtd};
use std::path::Path;
use std::process::Command;

/// A small deterministic generator (xorshift64*): the same configurations on every run.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The caching mode page with WCE clear, as `write-cache off` sets it.
const WRITE_CACHE_OFF: &str = "8:0:18:16:0:255:255:0:0:255:255:255:255:128:20:0:0:0:0:0:0";

/// Build one configuration through tgtadm (what an administrator can make by hand).
fn generate(tgtd: &Tgtd, dir: &Path, seed: u64) {
    let mut g = Gen(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let users = ["bob smith", "q\"uote", "back\\slash", "hash#tag", "plain", "x"];
    let passwords = ["pa ss word 12", "#starts-with-hash", "ends with \\", "\"quoted\" secret", "simplesecret12"];
    let mut made: Vec<String> = Vec::new();
    let mut account = |g: &mut Gen| -> String {
        let user = format!("{}{}", g.pick(&users), made.len());
        let password = g.pick(&passwords).to_string();
        tgtd.tgtadm_ok(&["--mode", "account", "--op", "new", "--user", &user, "--password", &password]);
        made.push(user.clone());
        user
    };
    if g.below(2) == 0 {
        let user = account(&mut g);
        tgtd.tgtadm_ok(&["--mode", "account", "--op", "bind", "--tid", "0", "--user", &user]);
    }
    for tid in 1..=1 + g.below(3) {
        let t = tid.to_string();
        let name = format!("iqn.2001-04.com.example:gen{seed}.t{tid}");
        tgtd.tgtadm_ok(&["--mode", "target", "--op", "new", "--tid", &t, "-T", &name]);
        for lun in 1..=1 + g.below(3) {
            let l = lun.to_string();
            let mut args: Vec<String> =
                ["--mode", "logicalunit", "--op", "new", "--tid", &t, "--lun", &l].map(String::from).to_vec();
            match g.below(3) {
                0 => {
                    let image = common::sparse_image(dir, &format!("disk {seed}#{tid}.{lun}.img"), 4 << 20);
                    args.extend(["-b".into(), image.to_str().unwrap().into()]);
                }
                kind => {
                    let bstype = if kind == 1 { "memory" } else { "null" };
                    args.extend(["--bstype", bstype, "--bsopts", "size=2097152"].map(String::from));
                }
            }
            if g.below(3) == 0 {
                args.extend(["--blocksize".into(), "4096".into()]);
            }
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            tgtd.tgtadm_ok(&argv);
            let mut params = Vec::new();
            for _ in 0..g.below(4) {
                params.push(match g.below(5) {
                    0 => format!("vendor_id={}", g.pick(&["ACME", "A #B", "two  spaces"])),
                    1 => format!("product_id={}", g.pick(&["FAST", "\"Q\"", "x\\y"])),
                    2 => "readonly=1".to_string(),
                    3 => "removable=1".to_string(),
                    _ => format!("mode_page={WRITE_CACHE_OFF}"),
                });
            }
            for p in params {
                tgtd.tgtadm_ok(&["--mode", "logicalunit", "--op", "update", "--tid", &t, "--lun", &l, "--params", &p]);
            }
        }
        for _ in 0..g.below(3) {
            let (name, value) = match g.below(4) {
                0 => ("MaxRecvDataSegmentLength", "65536"),
                1 => ("nop_interval", "7"),
                2 => ("TargetAlias", g.pick(&["my disk", "#1", "x"])),
                _ => ("InitialR2T", "No"),
            };
            tgtd.tgtadm_ok(&["--mode", "target", "--op", "update", "--tid", &t, "--name", name, "--value", value]);
        }
        for _ in 0..g.below(3) {
            let user = account(&mut g);
            tgtd.tgtadm_ok(&["--mode", "account", "--op", "bind", "--tid", &t, "--user", &user]);
        }
        if g.below(2) == 0 {
            let user = account(&mut g);
            tgtd.tgtadm_ok(&["--mode", "account", "--op", "bind", "--tid", &t, "--user", &user, "--outgoing"]);
        }
        for _ in 0..g.below(3) {
            let rule = match g.below(3) {
                0 => vec!["-I", g.pick(&["ALL", "10.0.0.0/8", "192.168.1.7"])],
                1 => vec!["-Q", g.pick(&["iqn.1994-05.com.example:h1", "iqn.x with space"])],
                _ => vec!["-I", "::1"],
            };
            let mut args = vec!["--mode", "target", "--op", "bind", "--tid", &t];
            args.extend(rule);
            // The same rule twice is refused; the generator may pick one again.
            let _ = tgtd.tgtadm(&args);
        }
    }
}

/// Dump -> execute on a fresh daemon -> dump is a fixed point, over generated configurations
/// with odd account names, memory and null stores, write-cache off and target parameters.
#[test]
fn generated_configurations_dump_and_load_back_identically() {
    for seed in 1..=4 {
        let dir = tempfile::tempdir().unwrap();
        let first = {
            let tgtd = Tgtd::start();
            generate(&tgtd, dir.path(), seed);
            ok(&tgtd, &["--dump"])
        };
        let conf = write(dir.path(), "dump.conf", &first);
        let fresh = Tgtd::start();
        let out = tgt_admin(&fresh, &["--execute", "-c", &conf]);
        assert!(out.status.success(), "seed {seed}: {}\n{first}", common::text(&out));
        let second = ok(&fresh, &["--dump"]);
        assert_eq!(second, first, "seed {seed}");
        // --pretend prints tgtadm command lines a shell runs as they are: the same configuration.
        let replay = Tgtd::start();
        let lines = ok(&replay, &["--execute", "--pretend", "-c", &conf]);
        let path = format!("{}:{}", bin_dir().display(), std::env::var("PATH").unwrap_or_default());
        let out = Command::new("sh").args(["-e", "-c", &lines]).env("PATH", path).output().unwrap();
        assert!(out.status.success(), "seed {seed}: {}\n{lines}", common::text(&out));
        assert_eq!(ok(&replay, &["--dump"]), first, "seed {seed}: {lines}");
    }
}
