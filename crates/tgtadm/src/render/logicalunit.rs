//! A LUN block, as in `--mode logicalunit --op show` and inside each target of `target show`.

use rtgt_mgmt::LunView;
use std::fmt::Write;

fn yes_no(flag: bool) -> &'static str {
    if flag {
        "Yes"
    } else {
        "No"
    }
}

/// Sizes are shown in decimal megabytes, rounded to nearest (64 MiB shows as 67 MB).
fn megabytes(bytes: u64) -> u64 {
    bytes / 1_000_000 + u64::from(bytes % 1_000_000 >= 500_000)
}

/// One LUN block, its "LUN:" line indented by `indent` spaces.
pub fn lun(l: &LunView, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::new();
    let _ = writeln!(out, "{pad}LUN: {}", l.lun);
    let field = |out: &mut String, text: String| {
        let _ = writeln!(out, "{pad}    {text}");
    };
    field(&mut out, format!("Type: {}", l.device_type.name()));
    field(&mut out, format!("SCSI ID: {}", l.scsi_id));
    field(&mut out, format!("SCSI SN: {}", l.scsi_sn));
    field(&mut out, format!("Size: {} MB, Block size: {}", megabytes(l.size), l.block_size));
    // A saved LUN waiting for its backing store says why on its state line; the path line stays the
    // bare path that scripts compare.
    match &l.missing {
        Some(why) => field(&mut out, format!("Online: No (backing store missing: {why})")),
        None => field(&mut out, format!("Online: {}", yes_no(l.online))),
    }
    field(&mut out, format!("Removable media: {}", yes_no(l.removable)));
    field(&mut out, format!("Prevent removal: {}", yes_no(l.prevent_removal)));
    field(&mut out, format!("Readonly: {}", yes_no(l.readonly)));
    field(&mut out, format!("SWP: {}", yes_no(l.swp)));
    field(&mut out, format!("Thin-provisioning: {}", yes_no(l.thin_provisioning)));
    field(&mut out, format!("Backing store type: {}", l.backing_store_type));
    field(&mut out, format!("Backing store path: {}", l.backing_store_path.as_deref().unwrap_or("None")));
    // tgt leaves the trailing space after the colon when there are no flags; scripts see it.
    field(&mut out, format!("Backing store flags: {}", l.backing_store_flags));
    // rtgt's: after tgt's fields, so parsers of tgt's layout are not disturbed, but never hidden:
    // a fault rule forgotten on a production LUN fails real I/O.
    for rule in &l.faults {
        field(&mut out, format!("Fault injection: {rule}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn megabytes_round_to_nearest() {
        assert_eq!(megabytes(0), 0);
        assert_eq!(megabytes(499_999), 0);
        assert_eq!(megabytes(500_000), 1);
        assert_eq!(megabytes(64 << 20), 67);
        assert_eq!(megabytes(1 << 40), 1_099_512);
        assert_eq!(megabytes(u64::MAX), 18_446_744_073_710);
    }
}
