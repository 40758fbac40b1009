//! An administrator's change of a live unit's parameters (`--op update --params`) and what the
//! initiators are told of it. The device server changed data they may have cached, so each nexus
//! through this port gets a unit attention on its next command to the LUN: INQUIRY DATA HAS
//! CHANGED when the standard INQUIRY data or a VPD page changed (SPC-4 6.6.1; VPD pages are INQUIRY
//! data too: identity, serial number, device identification, RMB, the provisioning pages), MODE
//! PARAMETERS CHANGED when a mode parameter did (an administrator's page, WCE, D_SENSE, or the
//! mode parameter header's WP bit). A change to the values already in place tells nobody.
//!
//! Nexuses standing here for other ports' initiators are skipped, as for MODE SELECT: their own
//! ports report their conditions.

use crate::lun_config::{LunConfig, Reconfigured};
use crate::sense::Asc;
use crate::target::Target;

impl Target {
    /// `LogicalUnit::reconfigure` on LUN `lun`, then the unit attentions for what it changed
    /// (see the module). Returns what changed.
    pub fn reconfigure_lun(&self, lun: u64, config: LunConfig) -> Result<Reconfigured, String> {
        let unit = self.lun(lun).ok_or_else(|| format!("logical unit {lun} does not exist"))?;
        let changed = unit.reconfigure(config);
        if changed.inquiry_data {
            self.unit_attention_local(lun, Asc::INQUIRY_DATA_HAS_CHANGED);
        }
        if changed.mode_parameters {
            self.mode_parameters_changed(lun, None);
        }
        Ok(changed)
    }

    /// The administrator's read-only setting of LUN `lun` (tgt's `readonly=0/1`). When the unit's
    /// write protection changes with it, so does the WP bit MODE SENSE reports in the mode
    /// parameter header (SBC-4 6.5.1; a tape drive's header carries it too): every nexus through this port gets MODE
    /// PARAMETERS CHANGED. A unit already write protected otherwise (SWP, a protected tape)
    /// reports the same WP, and nobody is told. Returns whether WP changed.
    pub fn set_lun_readonly(&self, lun: u64, readonly: bool) -> Result<bool, String> {
        let unit = self.lun(lun).ok_or_else(|| format!("logical unit {lun} does not exist"))?;
        let before = unit.write_protected();
        unit.set_readonly(readonly);
        let changed = unit.write_protected() != before;
        if changed {
            self.mode_parameters_changed(lun, None);
        }
        Ok(changed)
    }

    /// Establish `asc` for `lun` on every nexus through this port (not those standing for other
    /// ports' initiators).
    fn unit_attention_local(&self, lun: u64, asc: Asc) {
        for nexus in self.nexuses().iter().filter(|n| n.relative_port.is_none()) {
            nexus.add_unit_attention(lun, asc);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::*;
    use crate::{Asc, LunConfig};

    /// A copy of the unit's configuration with `edit` applied.
    fn edited(t: &TestLun, edit: impl FnOnce(&mut LunConfig)) -> LunConfig {
        let mut config = LunConfig::clone(&t.lu.config());
        edit(&mut config);
        config
    }

    #[test]
    fn reconfigure_changes_identity_but_not_geometry() {
        let t = TestLun::disk(1 << 20);
        let config = edited(&t, |c| {
            c.vendor_id = "ACME".into();
            c.block_size = 4096;
            c.thin_provisioning = true;
            c.online = false;
        });
        t.target.reconfigure_lun(1, config).unwrap();
        t.clear_ua(&t.nexus);
        assert_eq!(t.lu.block_size(), 512);
        assert!(!t.lu.is_online());
        let (r, d) = t.run(&[0x12, 0, 0, 0, 36, 0]);
        assert_good(&r);
        assert_eq!(&d[8..16], b"ACME    ");
        // Thin provisioning now offers UNMAP; the medium is gone.
        assert_sense(&t.run_out(&[0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[]).0, 0x02, 0x3a, 0x00);
        t.lu.set_online(true);
        assert_good(&t.run(&[0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0]).0);
    }

    /// SPC-4 6.6.1: changed INQUIRY data is reported to every nexus as UNIT ATTENTION, INQUIRY
    /// DATA HAS CHANGED (3Fh/03h), once; the next command runs.
    #[test]
    fn a_changed_identity_gives_every_nexus_inquiry_data_has_changed() {
        for edit in [
            (|c: &mut LunConfig| c.vendor_id = "ACME".into()) as fn(&mut LunConfig),
            |c| c.product_id = "OTHER".into(),
            |c| c.product_rev = "0002".into(),
            |c| c.scsi_id = "ACME 0001".into(),
            |c| c.scsi_sn = "SN42".into(),
            |c| c.removable = true,
            |c| c.thin_provisioning = true,
        ] {
            let t = TestLun::disk(1 << 20);
            let other = t.target.add_nexus("iqn.2024-01.test:i2".into());
            t.clear_ua(&other);
            let changed = t.target.reconfigure_lun(1, edited(&t, edit)).unwrap();
            assert!(changed.inquiry_data && !changed.mode_parameters, "{changed:?}");
            for nexus in [&t.nexus, &other] {
                assert_sense(&t.run_on(nexus, &[0x00, 0, 0, 0, 0, 0], &[]).0, 0x06, 0x3f, 0x03);
                assert_good(&t.run_on(nexus, &[0x00, 0, 0, 0, 0, 0], &[]).0);
            }
        }
    }

    /// The same values again, or a change of what no initiator reads here (online), tells nobody.
    #[test]
    fn an_unchanged_configuration_tells_nobody() {
        let t = TestLun::disk(1 << 20);
        let same = t.target.reconfigure_lun(1, edited(&t, |_| {})).unwrap();
        assert!(same.is_empty());
        assert!(t.target.reconfigure_lun(1, edited(&t, |c| c.online = false)).unwrap().is_empty());
        assert_eq!(t.nexus.take_unit_attention(1), None);
        assert!(t.target.reconfigure_lun(9, edited(&t, |_| {})).is_err());
    }

    /// An administrator's mode page, the write cache and the sense format are mode parameters:
    /// every nexus gets MODE PARAMETERS CHANGED (2Ah/01h), as the other nexuses do after MODE SELECT.
    #[test]
    fn changed_mode_parameters_give_every_nexus_mode_parameters_changed() {
        let page = crate::ModePageSpec::parse("0x20:0:2:1:2").unwrap();
        for edit in [
            (|c: &mut LunConfig| c.write_cache = false) as fn(&mut LunConfig),
            |c| c.descriptor_sense = true,
            |c| c.mode_pages.push(crate::ModePageSpec::parse("0x20:0:2:1:2").unwrap()),
        ] {
            let t = TestLun::disk(1 << 20);
            let changed = t.target.reconfigure_lun(1, edited(&t, edit)).unwrap();
            assert!(changed.mode_parameters && !changed.inquiry_data, "{changed:?}");
            assert_eq!(t.nexus.take_unit_attention(1), Some(Asc::MODE_PARAMETERS_CHANGED));
            assert_eq!(t.nexus.take_unit_attention(1), None);
        }
        // The page already there, byte for byte: no change.
        let t = TestLun::with_config(1 << 20, |c| c.mode_pages.push(page.clone()));
        assert!(t.target.reconfigure_lun(1, edited(&t, |_| {})).unwrap().is_empty());
        assert_eq!(t.nexus.take_unit_attention(1), None);
    }

    /// readonly=1 sets WP in the mode parameter header (SBC-4 6.5.1): MODE PARAMETERS CHANGED,
    /// in the sense format the unit uses; readonly=1 again, or on a unit SWP protects already,
    /// changes no WP bit and tells nobody.
    #[test]
    fn a_readonly_change_is_a_mode_parameter_change_when_wp_changes() {
        let t = TestLun::disk(1 << 20);
        assert!(t.target.set_lun_readonly(1, true).unwrap());
        assert_sense(&t.run(&[0x00, 0, 0, 0, 0, 0]).0, 0x06, 0x2a, 0x01);
        // MODE SENSE(6): WP (bit 7 of the DEVICE-SPECIFIC PARAMETER, header byte 2) is set.
        let (r, d) = t.run(&[0x1a, 0x08, 0x3f, 0, 0xff, 0]);
        assert_good(&r);
        assert_eq!(d[2] & 0x80, 0x80);
        assert!(!t.target.set_lun_readonly(1, true).unwrap());
        assert_eq!(t.nexus.take_unit_attention(1), None);
        assert!(t.target.set_lun_readonly(1, false).unwrap());
        assert_eq!(t.nexus.take_unit_attention(1), Some(Asc::MODE_PARAMETERS_CHANGED));

        let swp = TestLun::disk(1 << 20);
        swp.lu.set_mode_params(crate::ModeParams { swp: true, ..swp.lu.mode_params() });
        assert!(!swp.target.set_lun_readonly(1, true).unwrap());
        assert_eq!(swp.nexus.take_unit_attention(1), None);
    }

    /// A nexus standing for another port's initiator is told by that port, not here.
    #[test]
    fn nexuses_of_other_ports_are_left_to_their_ports() {
        let t = TestLun::disk(1 << 20);
        let proxy = t.target.proxy_nexus("iqn.2024-01.test:far", 2);
        t.target.reconfigure_lun(1, edited(&t, |c| c.scsi_sn = "SN42".into())).unwrap();
        assert_eq!(t.nexus.take_unit_attention(1), Some(Asc::INQUIRY_DATA_HAS_CHANGED));
        assert_eq!(proxy.take_unit_attention(1), None);
    }
}
