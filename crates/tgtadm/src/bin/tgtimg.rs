//! tgtimg: tgt's image file utility for rtgt (see `rtgt_tgtadm::tgtimg`).

fn main() -> std::process::ExitCode {
    rtgt_tgtadm::tgtimg::main()
}
