//! tgt-admin: applies tgt's targets.conf to a running tgtd (see `rtgt_tgtadm::admin`).

fn main() -> std::process::ExitCode {
    rtgt_tgtadm::admin::run::main()
}
