//! A throwaway target for manual runs against real initiators (libiscsi's iscsi-test-cu):
//! `cargo run -p rtgt-iscsi --example serve -- 127.0.0.1:3261 [size-MiB]`, target
//! iqn.2024-01.rtgt:example, LUN 1 a memory disk, anyone may log in. With
//! `RTGT_EXAMPLE_CHAP=user:secret[:target-user:target-secret]` logins need CHAP (mutual with the
//! second pair), discovery included.

use rtgt_backstore::{Backstore, MemoryStore};
use rtgt_iscsi::{AclRule, IscsiServer, IscsiTarget, Registry};
use rtgt_scsi::{LogicalUnit, LunConfig, Target};
use std::sync::Arc;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3261".into());
    let mib: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);
    let scsi = Target::new(1, "iqn.2024-01.rtgt:example".into());
    let lu = LogicalUnit::new(LunConfig::disk(1, 1), Some(Backstore::Memory(MemoryStore::new(mib << 20))));
    scsi.add_lun(1, Arc::new(lu)).expect("add lun");
    let t = IscsiTarget::new(scsi);
    t.bind(AclRule::Any).expect("bind");
    let reg = Registry::new();
    if let Ok(chap) = std::env::var("RTGT_EXAMPLE_CHAP") {
        let parts: Vec<&str> = chap.split(':').collect();
        for (i, pair) in parts.chunks(2).enumerate() {
            let [user, secret] = pair else { panic!("RTGT_EXAMPLE_CHAP: user:secret pairs") };
            reg.add_account(user, secret).expect("account");
            t.bind_account(user, i == 1).expect("bind account");
            reg.bind_discovery_account(user, i == 1).expect("bind discovery account");
        }
    }
    reg.add_target(t).expect("add target");
    let srv = IscsiServer::new(reg);
    let bound = srv.listen(addr.parse().expect("address")).await.expect("listen");
    println!("listening on {bound}");
    let _ = tokio::signal::ctrl_c().await;
    srv.shutdown().await;
}
