//! RBD LUNs end to end, against the throwaway Ceph cluster of ../shared/ceph: libiscsi's
//! conformance suites, a verified mixed load, data read back with `rbd export`, kill -9 after FUA
//! writes, and a cluster that goes away under load. Built only with `--features rbd`;
//! scripts/rbd-test starts the shared cluster and exports CEPH_CONF. The outage test starts (and
//! stops) a cluster of its own so that the others keep theirs.
#![cfg(feature = "rbd")]

mod common;
mod cu;
#[path = "rbd_gateways/mod.rs"]
mod rbd_gateways;

use common::initiator::Connection;
use common::{require, sparse_image, Tgtd};
use cu::{score, Verdict, FOUNDATION_SUITES};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const INITIATOR: &str = "iqn.2026-11.org.rtgt.test:rbd-initiator";

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn conf() -> String {
    std::env::var("CEPH_CONF").expect("CEPH_CONF must name a running cluster: run scripts/rbd-test")
}

fn rbd(conf: &str, args: &[&str]) -> String {
    let out = Command::new("rbd").arg("-c").arg(conf).args(args).output().expect("run rbd");
    assert!(out.status.success(), "rbd {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh image (MiB) with a name unique to this test process.
fn image(conf: &str, size_mib: u32) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!("it-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    rbd(conf, &["create", "--size", &size_mib.to_string(), &format!("rbd/{name}")]);
    name
}

/// Target `tid` named `iqn` with an RBD LUN 1 on `rbd/<name>`, open to all initiators.
fn add_rbd_target(tgtd: &Tgtd, tid: u32, iqn: &str, conf: &str, name: &str, extra_opts: &str) {
    let opts = format!("conf={conf};id=admin{extra_opts}");
    let path = format!("rbd/{name}");
    tgtd.new_target(tid, iqn);
    tgtd.add_lun_ok(tid, 1, &["--bstype", "rbd", "--backing-store", &path, "--bsopts", &opts]);
    tgtd.bind(tid, "-I", "ALL");
}

/// The shared load generator, built with cc as scripts/verify-load builds it.
fn iscsi_load(dir: &Path) -> PathBuf {
    let src = shared().join("bench/iscsi-load/iscsi-load.c");
    let bin = dir.join("iscsi-load");
    let out = Command::new("cc").arg("-O2").arg("-o").arg(&bin).arg(&src).arg("-liscsi").output().expect("run cc");
    assert!(out.status.success(), "building iscsi-load: {}", String::from_utf8_lossy(&out.stderr));
    bin
}

/// A logged-in session on `iqn` whose POWER ON unit attention has been collected.
fn login_at(portal: std::net::SocketAddr, iqn: &str) -> Connection {
    let mut c = Connection::connect(portal).unwrap();
    c.login(INITIATOR, Some(iqn), &[]).unwrap();
    let _ = c.scsi(1, &[0; 6], &[], 0).unwrap();
    c
}

fn login(tgtd: &Tgtd, iqn: &str) -> Connection {
    login_at(tgtd.portal(), iqn)
}

/// WRITE(10) with FUA of `data` at `lba` (512-byte blocks).
fn write_fua(c: &mut Connection, lba: u32, data: &[u8]) -> common::initiator::ScsiOutcome {
    let mut cdb = [0u8; 10];
    cdb[0] = 0x2a;
    cdb[1] = 0x08;
    cdb[2..6].copy_from_slice(&lba.to_be_bytes());
    cdb[7..9].copy_from_slice(&((data.len() / 512) as u16).to_be_bytes());
    c.scsi(1, &cdb, data, 0).unwrap()
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8).collect()
}

#[test]
fn conformance_suites_pass_on_an_rbd_lun() {
    require("iscsi-test-cu");
    let conf = conf();
    let tgtd = Tgtd::start();
    let iqn = "iqn.2026-11.org.rtgt.test:rbd-conformance";
    add_rbd_target(&tgtd, 1, iqn, &conf, &image(&conf, 128), "");
    let url = tgtd.url(iqn, 1);
    let mut problems = Vec::new();
    let mut passed = 0;
    for suite in FOUNDATION_SUITES {
        let out = Command::new("timeout")
            .args(["300", "iscsi-test-cu", "-d", "-v", "-t", &format!("ALL.{suite}"), &url])
            .output()
            .expect("run iscsi-test-cu");
        let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let v = score(&log);
        if v.is_empty() {
            problems.push(format!("{suite}: no test ran:\n{log}"));
        }
        for (test, verdict) in &v {
            match verdict {
                Verdict::Pass => passed += 1,
                other => problems.push(format!("{test}: {other:?}\n{log}")),
            }
        }
    }
    eprintln!("conformance on rbd: {passed} passed, {} problems", problems.len());
    assert!(problems.is_empty(), "{}\n--- tgtd log ---\n{}", problems.join("\n"), tgtd.log());
}

/// The whole matrix with every LUN on an RBD image: the same bar as file LUNs (`cu::matrix`).
#[test]
fn full_conformance_matrix_on_rbd_luns() {
    use cu::matrix::{self, DISK, PARAMS, READONLY, REMOVABLE, SLOW, SLOW_BSOPTS};
    require("iscsi-test-cu");
    let conf = conf();
    let tgtd = Tgtd::start();
    // The slow disk (Sanitize.Reset's) is a thin one like the first.
    let targets = [(DISK, 128, ""), (REMOVABLE, 128, ""), (READONLY, 128, ""), (SLOW, 64, SLOW_BSOPTS)];
    for (i, (iqn, mib, opts)) in targets.into_iter().enumerate() {
        let tid = i as u32 + 1;
        let opts = if opts.is_empty() { String::new() } else { format!(";{opts}") };
        add_rbd_target(&tgtd, tid, iqn, &conf, &image(&conf, mib), &opts);
        let t = tid.to_string();
        let update = ["--lld", "iscsi", "--mode", "logicalunit", "--op", "update", "--tid", &t, "--lun", "1"];
        tgtd.tgtadm_ok(&[&update[..], &["--params", PARAMS[i % 3]]].concat());
    }
    matrix::run_and_check("rbd", tgtd.portal(), || tgtd.log());
}

/// The whole matrix with its two URLs on two gateways of the same images: gateway a (the first
/// URL, and the runs with one URL) owns every unit; gateway b (the second URL of the whole-suite
/// and PreventAllow runs) forwards media access to a. The multipath and multi-initiator tests
/// (reservations made through one gateway and checked on the other) cross gateways.
#[test]
fn full_conformance_matrix_across_two_gateways() {
    use cu::matrix::{self, DISK, PARAMS, READONLY, REMOVABLE, SLOW, SLOW_BSOPTS};
    require("iscsi-test-cu");
    let conf = conf();
    let a = Tgtd::start();
    let b = Tgtd::start();
    let targets = [(DISK, 128, ""), (REMOVABLE, 128, ""), (READONLY, 128, ""), (SLOW, 64, SLOW_BSOPTS)];
    for (i, (iqn, mib, opts)) in targets.into_iter().enumerate() {
        let tid = i as u32 + 1;
        let opts = if opts.is_empty() { String::new() } else { format!(";{opts}") };
        let name = image(&conf, mib);
        // a first: the first gateway up owns the unit.
        for (tgtd, gw, tpg) in [(&a, "gw-a", 1), (&b, "gw-b", 2)] {
            let gateway = format!("{opts};gateway={gw};tpg={tpg};portal={}", tgtd.portal());
            add_rbd_target(tgtd, tid, iqn, &conf, &name, &gateway);
            let t = tid.to_string();
            let update = ["--lld", "iscsi", "--mode", "logicalunit", "--op", "update", "--tid", &t, "--lun", "1"];
            tgtd.tgtadm_ok(&[&update[..], &["--params", PARAMS[i % 3]]].concat());
        }
    }
    // b forwards once it read a's forwarding address (a heartbeat at most) on every unit.
    let started = Instant::now();
    for iqn in [DISK, REMOVABLE, READONLY, SLOW] {
        let mut c = login_at(b.portal(), iqn);
        while c.scsi(1, &[0; 6], &[], 0).unwrap().status != 0 {
            assert!(started.elapsed() < Duration::from_secs(15), "b never forwarded for {iqn}\n{}", b.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    matrix::run_and_check_across("rbd-gateways", a.portal(), b.portal(), || {
        format!("{}\n--- b ---\n{}", a.log(), b.log())
    });
    // The second URL really went to b: the suite's own initiators logged in there.
    assert!(
        b.log().contains("initiator=iqn.2007-10.com.github:sahlberg:libiscsi"),
        "b saw no suite login\n{}",
        b.log()
    );
}

#[test]
fn verified_mixed_load_on_an_rbd_lun() {
    let conf = conf();
    let tgtd = Tgtd::start();
    let iqn = "iqn.2026-11.org.rtgt.test:rbd-load";
    add_rbd_target(&tgtd, 1, iqn, &conf, &image(&conf, 128), "");
    let load = iscsi_load(tgtd.dir.path());
    let url = tgtd.url(iqn, 1);
    for args in [
        &["--rw", "mixed", "--mix", "70", "--verify", "--conns", "4", "--qd", "8", "--time", "4", "--size", "64M"][..],
        &["--rw", "write", "--bs", "128k", "--verify", "--conns", "2", "--qd", "4", "--time", "3", "--size", "64M"],
    ] {
        let out = Command::new(&load).args(args).arg(&url).output().unwrap();
        assert!(
            out.status.success(),
            "iscsi-load {args:?}: {}{}\n--- tgtd log ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tgtd.log()
        );
    }
}

/// `rbd export` of the image, as bytes.
fn export(conf: &str, name: &str, dir: &Path) -> Vec<u8> {
    let file = dir.join(format!("{name}.export"));
    let _ = std::fs::remove_file(&file);
    rbd(conf, &["export", "--no-progress", &format!("rbd/{name}"), file.to_str().unwrap()]);
    std::fs::read(&file).unwrap()
}

#[test]
fn data_written_through_rtgt_is_in_the_image() {
    let conf = conf();
    let tgtd = Tgtd::start();
    let iqn = "iqn.2026-11.org.rtgt.test:rbd-export";
    let name = image(&conf, 16);
    add_rbd_target(&tgtd, 1, iqn, &conf, &name, "");
    let mut c = login(&tgtd, iqn);
    let mut expected = vec![0u8; 16 << 20];
    // Writes of several sizes, one across the first 4 MiB object boundary, plain and FUA, then
    // SYNCHRONIZE CACHE: after that the cluster must hold every byte.
    for (i, &(lba, blocks)) in [(0u32, 8usize), (8190, 4), (100, 128), (20000, 1)].iter().enumerate() {
        let data = pattern(i as u8 + 1, blocks * 512);
        let out = if i % 2 == 0 { c.write10(1, lba, &data, 512).unwrap() } else { write_fua(&mut c, lba, &data) };
        assert_eq!(out.status, 0, "write at {lba}: sense {:x?}", out.sense);
        let at = lba as usize * 512;
        expected[at..at + data.len()].copy_from_slice(&data);
    }
    let out = c.scsi(1, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 0).unwrap();
    assert_eq!(out.status, 0, "SYNCHRONIZE CACHE: {:x?}", out.sense);
    let got = export(&conf, &name, tgtd.dir.path());
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "rbd export differs from what was written");
    // And the other way: what another client wrote is what rtgt reads.
    let back = c.read10(1, 8190, 4, 512).unwrap();
    assert_eq!(back.data_in, expected[8190 * 512..8194 * 512]);
}

#[test]
fn fua_writes_survive_kill_9() {
    let conf = conf();
    let mut tgtd = Tgtd::start();
    let iqn = "iqn.2026-11.org.rtgt.test:rbd-kill";
    let name = image(&conf, 16);
    // librbd's cache in write-back mode keeps written data in this process until a flush (or a
    // second's age): only the flush a FUA write makes puts the data on the OSDs before the kill.
    let writeback = tgtd.dir.path().join("writeback.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &writeback,
        format!("{text}\n[client.admin]\nrbd cache policy = writeback\nrbd cache max dirty age = 30\n"),
    )
    .unwrap();
    add_rbd_target(&tgtd, 1, iqn, writeback.to_str().unwrap(), &name, "");
    let show = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    assert!(show.contains("rbd/") && show.contains("Backing store type: rbd"), "{show}");
    let mut c = login(&tgtd, iqn);
    // librbd writes through until the first flush it sees; an initiator's first SYNCHRONIZE CACHE
    // turns write-back on.
    assert_eq!(c.scsi(1, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 0).unwrap().status, 0);
    let mut expected = vec![0u8; 16 << 20];
    for i in 0..200u32 {
        let lba = (i * 523) % 32000;
        let data = pattern(i as u8, 4096);
        let out = write_fua(&mut c, lba, &data);
        assert_eq!(out.status, 0, "write {i}: sense {:x?}", out.sense);
        let at = lba as usize * 512;
        expected[at..at + data.len()].copy_from_slice(&data);
    }
    // SAFETY: kill(2) on the PID of the tgtd this test started.
    assert_eq!(unsafe { libc::kill(tgtd.pid(), libc::SIGKILL) }, 0);
    let _ = tgtd.child.wait();
    let got = export(&conf, &name, tgtd.dir.path());
    let lost = got.chunks(512).zip(expected.chunks(512)).filter(|(a, b)| a != b).count();
    assert_eq!(lost, 0, "{lost} acknowledged FUA blocks are missing after kill -9");

    // A new tgtd on the same state directory reopens the image with its saved options and reads
    // the same data.
    let mut again = Command::new(env!("CARGO_BIN_EXE_tgtd"))
        .args(["-f", "--iscsi", &format!("portal=127.0.0.1:{}", tgtd.port), "--control-socket"])
        .arg(&tgtd.socket)
        .arg("--state-dir")
        .arg(tgtd.dir.path().join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tgtd.dir.path().join("tgtd-again.log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !tgtd.tgtadm(&["--lld", "iscsi", "--mode", "target", "--op", "show"]).status.success() {
        assert!(Instant::now() < deadline, "restarted tgtd does not answer");
        std::thread::sleep(Duration::from_millis(50));
    }
    let show = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    let restored = show.contains(&format!("Backing store path: rbd/{name}"));
    let mut c = login(&tgtd, iqn);
    let back = c.read10(1, 523, 8, 512).unwrap();
    let _ = again.kill();
    let _ = again.wait();
    let log = std::fs::read_to_string(tgtd.dir.path().join("tgtd-again.log")).unwrap_or_default();
    assert!(restored, "the RBD LUN was not restored:\n{show}\n{log}");
    assert_eq!(back.status, 0, "{:x?}", back.sense);
    assert!(back.data_in == expected[523 * 512..531 * 512], "restored LUN reads other data");
}

/// A base port whose 100 ports (monitor, OSD, messengers) are free, below the kernel's ephemeral
/// range (32768 and up by default) so that no outgoing connection can take one of them meanwhile.
fn free_port_base() -> u32 {
    let start = 20000 + (std::process::id() % 120) * 100;
    (0..120)
        .map(|i| 20000 + (start - 20000 + i * 100) % 12000)
        .find(|&base| (base..base + 100).all(|p| std::net::TcpListener::bind(("127.0.0.1", p as u16)).is_ok()))
        .expect("no free block of 100 ports between 20000 and 32000")
}

/// A cluster of this test's own (it will be stopped), from ../shared/ceph/start.sh.
struct OwnCluster {
    dir: PathBuf,
    conf: String,
}

impl OwnCluster {
    /// `name` keeps its directory apart from other own clusters; `osd_bytes` sizes its memstore.
    fn start(name: &str, osd_bytes: &str) -> OwnCluster {
        // One start at a time: a port block found free stays free only until its cluster binds it.
        static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        let dir = std::env::temp_dir().join(format!("rtgt-ceph-{name}-{}", std::process::id()));
        let base = free_port_base();
        let out = Command::new(shared().join("ceph/start.sh"))
            .arg(&dir)
            .env("CEPH_PORT_BASE", base.to_string())
            .env("CEPH_IMAGE_SIZE", "")
            .env("CEPH_OSD_BYTES", osd_bytes)
            .stdin(Stdio::null())
            .output()
            .expect("run start.sh");
        assert!(out.status.success(), "start.sh: {}", String::from_utf8_lossy(&out.stderr));
        OwnCluster { conf: dir.join("ceph.conf").to_string_lossy().into_owned(), dir }
    }

    fn stop(&self) {
        let _ = Command::new(shared().join("ceph/stop.sh")).arg(&self.dir).output();
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn cluster_stopped_under_load_fails_cleanly_and_other_luns_keep_serving() {
    let cluster = OwnCluster::start("outage", "2G");
    let tgtd = Tgtd::start();
    let rbd_iqn = "iqn.2026-11.org.rtgt.test:rbd-outage";
    // A short timeout so the test does not wait the default 20 s per request.
    add_rbd_target(&tgtd, 1, rbd_iqn, &cluster.conf, &image(&cluster.conf, 64), ";timeout=4");
    let file_iqn = "iqn.2026-11.org.rtgt.test:file-beside-rbd";
    tgtd.add_disk_target(2, file_iqn, &sparse_image(tgtd.dir.path(), "file.img", 64 << 20));

    // Load on the RBD LUN: FUA writes until one fails.
    let portal = tgtd.portal();
    let writer = std::thread::spawn(move || {
        let mut c = login_at(portal, rbd_iqn);
        let started = Instant::now();
        let mut ok = 0u32;
        loop {
            let out = write_fua(&mut c, (ok * 8) % 100_000, &pattern(ok as u8, 4096));
            if out.status != 0 {
                return (ok, out.status, out.sense, started.elapsed());
            }
            ok += 1;
            if started.elapsed() > Duration::from_secs(120) {
                return (ok, 0, Vec::new(), started.elapsed());
            }
        }
    });
    std::thread::sleep(Duration::from_millis(1500));
    cluster.stop();
    let stopped = Instant::now();

    // Meanwhile the file LUN serves a verified load.
    let load = iscsi_load(tgtd.dir.path());
    let out = Command::new(&load)
        .args(["--rw", "mixed", "--verify", "--conns", "2", "--qd", "8", "--time", "3", "--size", "32M"])
        .arg(tgtd.url(file_iqn, 1))
        .output()
        .unwrap();
    assert!(out.status.success(), "file LUN during the outage: {}", String::from_utf8_lossy(&out.stderr));

    let (ok, status, sense, _) = writer.join().unwrap();
    eprintln!("outage: {ok} writes before, failed {:?} after the stop with sense {sense:x?}", stopped.elapsed());
    assert!(ok > 0, "no write succeeded before the outage");
    assert_eq!(status, 0x02, "the RBD LUN never failed a write ({ok} succeeded)");
    // Fixed or descriptor format: the sense key is MEDIUM ERROR (3) either way.
    let key = if sense.first().is_some_and(|b| b & 0x7f >= 0x72) { sense.get(1) } else { sense.get(2) };
    assert_eq!(key.map(|k| k & 0x0f), Some(0x03), "sense {sense:x?}");
    assert!(stopped.elapsed() < Duration::from_secs(60), "the failure took {:?}", stopped.elapsed());
    let log = tgtd.log();
    assert!(log.contains("backing store I/O failed"), "no log line for the failure:\n{log}");
    // The daemon still answers its management socket and the file LUN.
    tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    let mut c = login(&tgtd, file_iqn);
    assert_eq!(c.read10(1, 0, 8, 512).unwrap().status, 0);
    // Removing the RBD LUN closes the image, which gives up on the absent cluster after its
    // timeouts (about 12 s here) instead of hanging the management socket.
    let t = Instant::now();
    tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "logicalunit", "--op", "delete", "--tid", "1", "--lun", "1"]);
    assert!(t.elapsed() < Duration::from_secs(60), "deleting took {:?}", t.elapsed());
    assert_eq!(c.read10(1, 8, 8, 512).unwrap().status, 0);
}

/// WCE from the caching mode page (MODE SENSE(6), DBD, page 08h).
fn wce(c: &mut Connection, lun: u64) -> bool {
    let out = c.scsi(lun, &[0x1a, 0x08, 0x08, 0, 255, 0], &[], 255).unwrap();
    assert_eq!(out.status, 0, "MODE SENSE: {:x?}", out.sense);
    let page = &out.data_in[4..];
    assert_eq!(page[0] & 0x3f, 0x08, "{:x?}", out.data_in);
    page[2] & 0x04 != 0
}

#[test]
fn caching_page_tells_the_truth_and_snapshots_are_write_protected() {
    let conf = conf();
    let tgtd = Tgtd::start();
    let iqn = "iqn.2026-11.org.rtgt.test:rbd-modes";
    let name = image(&conf, 8);
    add_rbd_target(&tgtd, 1, iqn, &conf, &name, "");
    let path = format!("rbd/{name}");
    let nocache = format!("conf={conf};id=admin;cache=off");
    rbd(&conf, &["snap", "create", &format!("{path}@s1")]);
    let snap = format!("{path}@s1");
    for (lun, path, opts) in [("2", &path, &nocache), ("3", &snap, &format!("conf={conf}"))] {
        tgtd.tgtadm_ok(&[
            "--lld",
            "iscsi",
            "--mode",
            "logicalunit",
            "--op",
            "new",
            "--tid",
            "1",
            "--lun",
            lun,
            "--bstype",
            "rbd",
            "--backing-store",
            path,
            "--bsopts",
            opts,
        ]);
    }
    let mut c = login(&tgtd, iqn);
    assert!(wce(&mut c, 1), "librbd's cache is on: WCE=1");
    let _ = c.scsi(2, &[0; 6], &[], 0).unwrap();
    assert!(!wce(&mut c, 2), "cache=off: WCE=0");
    let _ = c.scsi(3, &[0; 6], &[], 0).unwrap();
    let mut cdb = [0u8; 10];
    cdb[0] = 0x2a;
    cdb[8] = 1;
    let out = c.scsi(3, &cdb, &[0u8; 512], 0).unwrap();
    assert_eq!(
        (out.status, out.sense.get(2).map(|k| k & 0x0f)),
        (0x02, Some(0x07)),
        "snapshot write: {:x?}",
        out.sense
    );
    let show = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    assert!(show.contains(&format!("Backing store path: {snap}")), "{show}");
}

/// A cluster out of space: writes that need new space fail at once with DATA PROTECT, SPACE
/// ALLOCATION FAILED WRITE PROTECT (07/27/07, as ENOSPC on a file LUN), instead of waiting in
/// librados until the cluster has room and failing much later with a timeout; overwrites of space
/// the image already has, and reads, still work.
#[test]
fn a_full_cluster_answers_space_allocation_failed() {
    let cluster = OwnCluster::start("full", "48M");
    let tgtd = Tgtd::start();
    let iqn = "iqn.2026-12.org.rtgt.test:rbd-full";
    add_rbd_target(&tgtd, 1, iqn, &cluster.conf, &image(&cluster.conf, 1024), ";timeout=30");
    let mut c = login(&tgtd, iqn);
    let chunk = 256 << 10;
    let blocks = (chunk / 512) as u32;
    let mut written = 0u32;
    let begun = Instant::now();
    let (status, sense, took) = loop {
        let started = Instant::now();
        let out = write_fua(&mut c, written * blocks, &pattern(written as u8, chunk));
        if out.status != 0 {
            break (out.status, out.sense, started.elapsed());
        }
        written += 1;
        // Past the cluster's 48 MiB the OSD reports itself full within seconds: slow down
        // meanwhile rather than pile data into its memory.
        if written * chunk as u32 > 64 << 20 {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(begun.elapsed() < Duration::from_secs(120), "writes to a 48 MiB cluster go on succeeding");
    };
    eprintln!("full cluster: {written} x 256 KiB written, then status {status:#x} sense {sense:x?} after {took:?}");
    assert!(written > 0, "no write succeeded");
    assert_eq!(status, 0x02);
    let code = if sense.first().is_some_and(|b| b & 0x7f >= 0x72) {
        (sense[1] & 0x0f, sense[2], sense[3])
    } else {
        (sense[2] & 0x0f, sense[12], sense[13])
    };
    assert_eq!(code, (0x07, 0x27, 0x07), "sense {sense:x?}");
    assert!(took < Duration::from_secs(20), "the refusal took {took:?}");
    let out = write_fua(&mut c, 0, &pattern(7, chunk));
    assert_eq!(out.status, 0, "overwriting written blocks: {:x?}", out.sense);
    let back = c.read10(1, 0, blocks as u16, 512).unwrap();
    assert_eq!(back.status, 0, "{:x?}", back.sense);
    assert!(back.data_in == pattern(7, chunk), "the first chunk reads back other data");
    let log = tgtd.log();
    assert!(log.contains("backing store I/O failed"), "no log line for the failure:\n{log}");
}

/// /metrics reports librbd's calls on an RBD LUN: every write, read and flush the commands made,
/// with their latency, and no errors.
#[test]
fn metrics_count_librbd_calls() {
    let conf = conf();
    let port = common::free_port();
    let tgtd = Tgtd::start_with(&["--metrics", &format!("127.0.0.1:{port}")]);
    let iqn = "iqn.2026-11.org.rtgt.test:rbd-metrics";
    let name = image(&conf, 16);
    add_rbd_target(&tgtd, 1, iqn, &conf, &name, "");
    let mut c = login(&tgtd, iqn);
    for i in 0..20u32 {
        assert_eq!(c.write10(1, i * 8, &pattern(i as u8, 4096), 512).unwrap().status, 0);
    }
    for i in 0..10u32 {
        assert_eq!(c.read10(1, i * 8, 8, 512).unwrap().status, 0);
    }
    assert_eq!(c.scsi(1, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 0).unwrap().status, 0);
    let text = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(s, "GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut t = String::new();
        s.read_to_string(&mut t).unwrap();
        t
    };
    let value = |series: &str| {
        text.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    };
    let lun = format!("tid=\"1\",target=\"{iqn}\",lun=\"1\"");
    // Unit attention handling and the initiator's probing read nothing from the image; only
    // these commands did.
    assert_eq!(value(&format!("rtgt_rbd_op_latency_seconds_count{{{lun},op=\"write\"}}")), 20.0);
    assert_eq!(value(&format!("rtgt_rbd_op_latency_seconds_count{{{lun},op=\"read\"}}")), 10.0);
    assert!(value(&format!("rtgt_rbd_op_latency_seconds_count{{{lun},op=\"flush\"}}")) >= 1.0);
    assert!(value(&format!("rtgt_rbd_op_latency_seconds_sum{{{lun},op=\"write\"}}")) > 0.0);
    assert_eq!(value(&format!("rtgt_rbd_op_errors_total{{{lun},op=\"write\"}}")), 0.0);
}
