//! tgtadm: tgt's administration command for rtgt (see `rtgt_tgtadm::run`).

fn main() -> std::process::ExitCode {
    rtgt_tgtadm::run::main()
}
