//! Forwarding on a unit with port groups (`PortGroups::forward`): a port that does not own the
//! storage answers what every port can (inquiry data, persistent reservations, port groups)
//! itself, reports its nexus's unit attention first, and sends everything else to the owner with
//! the originating initiator port; the owner runs a forwarded command with no unit attention and
//! only while its group is active/optimized. A reset through one port is passed to the others
//! (`PortGroups::reset_elsewhere`), and so is a CLEAR TASK SET (`PortGroups::clear_task_set_elsewhere`).

use crate::alua::{AccessState, ForwardFuture, ForwardReply, ForwardRequest, PortGroup, PortGroups};
use crate::sense::Asc;
use crate::test_util::*;
use crate::ScsiStatus;
use parking_lot::Mutex;
use std::sync::Arc;

/// A non-owner that records what it forwards and answers GOOD with `reply` as data-in.
#[derive(Debug)]
struct NonOwner {
    state: AccessState,
    forwards: bool,
    sent: Mutex<Vec<ForwardRequest>>,
    resets: Mutex<Vec<Asc>>,
    /// At each CLEAR TASK SET passed on: how many tasks `watched` still had then.
    clears: Mutex<Vec<usize>>,
    watched: Mutex<Option<Arc<crate::Nexus>>>,
}

impl PortGroups for NonOwner {
    fn relative_port(&self) -> u16 {
        2
    }
    fn group(&self) -> u16 {
        2
    }
    fn local_state(&self) -> AccessState {
        self.state
    }
    fn groups(&self) -> Vec<PortGroup> {
        vec![
            PortGroup { id: 1, state: AccessState::ActiveOptimized, relative_ports: vec![1] },
            PortGroup { id: 2, state: self.state, relative_ports: vec![2] },
        ]
    }
    fn forward(&self, request: ForwardRequest) -> Option<ForwardFuture> {
        if !self.forwards {
            return None;
        }
        self.sent.lock().push(request);
        let reply =
            ForwardReply { status: ScsiStatus::Good, sense: None, data_out_expected: 0, data_in: b"owner".to_vec() };
        Some(Box::pin(std::future::ready(Ok(reply))))
    }
    fn reset_elsewhere(&self, asc: Asc) {
        self.resets.lock().push(asc);
    }
    fn clear_task_set_elsewhere(&self) {
        let running = self.watched.lock().as_ref().map_or(0, |n| n.tasks().len());
        self.clears.lock().push(running);
    }
}

impl NonOwner {
    fn new(state: AccessState, forwards: bool) -> Arc<Self> {
        Arc::new(NonOwner {
            state,
            forwards,
            sent: Mutex::new(Vec::new()),
            resets: Mutex::new(Vec::new()),
            clears: Mutex::new(Vec::new()),
            watched: Mutex::new(None),
        })
    }
}

fn non_owner(state: AccessState, forwards: bool) -> (TestLun, Arc<NonOwner>) {
    let t = TestLun::disk(1 << 20);
    let groups = NonOwner::new(state, forwards);
    t.lu.set_port_groups(groups.clone()).unwrap();
    (t, groups)
}

#[test]
fn media_access_goes_to_the_owner_with_the_initiator_port() {
    let (t, groups) = non_owner(AccessState::ActiveNonOptimized, true);
    let read = [0x28, 0, 0, 0, 0, 8, 0, 0, 1, 0];
    let (r, data) = t.run(&read);
    assert_good(&r);
    assert_eq!(data, b"owner", "the owner's data-in");
    let write = [0x2a, 0, 0, 0, 0, 4, 0, 0, 1, 0];
    assert_good(&t.run_out(&write, &[9u8; 512]).0);
    {
        let sent = groups.sent.lock();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].cdb, read);
        assert_eq!(sent[0].initiator_port, t.nexus.initiator_port);
        assert_eq!(sent[0].relative_port, 2);
        assert_eq!((sent[1].cdb.as_slice(), sent[1].data_out.as_slice()), (&write[..], &[9u8; 512][..]));
    }
    // What every port can answer is answered here: INQUIRY, REPORT TARGET PORT GROUPS, REPORT
    // LUNS, PERSISTENT RESERVE IN (kept in common).
    assert_good(&t.run(&[0x12, 0, 0, 0, 36, 0]).0);
    assert_good(&t.run(&[0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0]).0);
    assert_good(&t.run(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0]).0);
    assert_good(&t.run(&[0x5e, 0x00, 0, 0, 0, 0, 0, 0x01, 0, 0]).0);
    assert_eq!(groups.sent.lock().len(), 2);
    // The rest of the unit's state is the owner's: MODE SENSE and SELECT (mode pages), RESERVE(6)
    // and TEST UNIT READY go there, so a reservation or a mode page set through any port holds
    // on all.
    let mode_sense = [0x1a, 0, 0x3f, 0, 0xff, 0];
    assert_eq!(t.run(&mode_sense).1, b"owner");
    assert_good(&t.run(&[0x16, 0, 0, 0, 0, 0]).0);
    assert_good(&t.run(&[0, 0, 0, 0, 0, 0]).0);
    assert_eq!(groups.sent.lock().iter().skip(2).map(|r| r.cdb[0]).collect::<Vec<_>>(), [0x1a, 0x16, 0x00]);
    groups.sent.lock().truncate(2);
    // A unit attention of this nexus is reported here, before anything is forwarded.
    t.target.access_state_changed(t.lun);
    assert_sense(&t.run(&read).0, 0x06, 0x2a, 0x06);
    assert_eq!(groups.sent.lock().len(), 2);
    // An unknown opcode never leaves this port.
    assert_sense(&t.run(&[0xff, 0, 0, 0, 0, 0]).0, 0x05, 0x20, 0x00);
    assert_eq!(groups.sent.lock().len(), 2);
}

#[test]
fn a_port_that_does_not_forward_refuses_as_its_state_says() {
    let (t, groups) = non_owner(AccessState::Standby, false);
    assert_sense(&t.run(&[0x28, 0, 0, 0, 0, 8, 0, 0, 1, 0]).0, 0x02, 0x04, 0x0b);
    assert!(groups.sent.lock().is_empty());
}

#[test]
fn the_owner_runs_forwarded_commands_without_unit_attentions_and_only_while_it_owns() {
    let t = TestLun::disk(1 << 20);
    let groups = NonOwner::new(AccessState::ActiveOptimized, false);
    t.lu.set_port_groups(groups).unwrap();
    let proxy = t.target.proxy_nexus("iqn.2024-01.test:i,i,0x1", 2);
    t.target.access_state_changed(t.lun);
    let mut data_in = Vec::new();
    let write = [0x2a, 0, 0, 0, 0, 4, 0, 0, 1, 0];
    let r = block_on(t.target.execute_forwarded(&proxy, t.lun, &write, &[7u8; 512], &mut data_in));
    assert_good(&r);
    assert_eq!(r.data_out_expected, 512);
    let r = block_on(t.target.execute_forwarded(&proxy, t.lun, &[0x28, 0, 0, 0, 0, 4, 0, 0, 1, 0], &[], &mut data_in));
    assert_good(&r);
    assert_eq!(data_in, [7u8; 512]);
    // Not the owner (any more): answered as a transition, which the initiator retries.
    let (t2, _) = non_owner(AccessState::ActiveNonOptimized, true);
    let proxy = t2.target.proxy_nexus("iqn.2024-01.test:i,i,0x1", 2);
    let r =
        block_on(t2.target.execute_forwarded(&proxy, t2.lun, &[0x28, 0, 0, 0, 0, 4, 0, 0, 1, 0], &[], &mut data_in));
    assert_sense(&r, 0x02, 0x04, 0x0a);
}

#[test]
fn a_reset_through_one_port_is_passed_to_the_others_and_not_back() {
    let (t, groups) = non_owner(AccessState::ActiveNonOptimized, true);
    t.target.lun_reset(t.lun).unwrap();
    assert_eq!(*groups.resets.lock(), [Asc::BUS_DEVICE_RESET_FUNCTION_OCCURRED]);
    assert_eq!(t.nexus.unit_attentions.take(t.lun), Some(Asc::BUS_DEVICE_RESET_FUNCTION_OCCURRED));
    t.target.target_reset(crate::ResetKind::Warm);
    assert_eq!(groups.resets.lock()[1], Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET);
    // Reset by another port: this port's nexuses get the unit attention, the others are not told.
    let other = t.target.add_nexus("iqn.2024-01.test:other,i,0x2".into());
    t.clear_ua(&other);
    t.target.reset_by_peer(t.lun, Asc::BUS_DEVICE_RESET_FUNCTION_OCCURRED).unwrap();
    assert_eq!(groups.resets.lock().len(), 2);
    assert_eq!(other.unit_attentions.take(t.lun), Some(Asc::BUS_DEVICE_RESET_FUNCTION_OCCURRED));
}

#[test]
fn a_clear_task_set_through_one_port_is_passed_to_the_others_and_not_back() {
    use crate::task_set::tests::Recorder;
    use crate::AbortCause;
    // Through a non-owner: its own tasks go first, then the others are told.
    let (t, groups) = non_owner(AccessState::ActiveNonOptimized, true);
    let other = t.target.add_nexus("iqn.2024-01.test:other,i,0x2".into());
    t.clear_ua(&other);
    *groups.watched.lock() = Some(other.clone());
    let theirs = Recorder::start(&other, 7, t.lun);
    assert_eq!(t.target.clear_task_set(&t.nexus, t.lun), Ok(1));
    assert_eq!(theirs.aborted(), Some(AbortCause::Aborted));
    assert_eq!(*groups.clears.lock(), [0], "told after its own tasks went");
    assert_eq!(other.unit_attentions.take(t.lun), Some(Asc::COMMANDS_CLEARED_BY_ANOTHER_INITIATOR));
    assert_eq!(t.nexus.unit_attentions.take(t.lun), None);
    // Cleared through another port: every nexus here loses its tasks on the unit and is told,
    // the asking nexus being elsewhere; nothing goes back.
    let mine = Recorder::start(&t.nexus, 8, t.lun);
    let theirs = Recorder::start(&other, 9, t.lun);
    assert_eq!(t.target.task_set_cleared_by_peer(t.lun), Ok(2));
    assert_eq!((mine.aborted(), theirs.aborted()), (Some(AbortCause::Aborted), Some(AbortCause::Aborted)));
    assert_eq!(t.nexus.unit_attentions.take(t.lun), Some(Asc::COMMANDS_CLEARED_BY_ANOTHER_INITIATOR));
    assert_eq!(other.unit_attentions.take(t.lun), Some(Asc::COMMANDS_CLEARED_BY_ANOTHER_INITIATOR));
    assert_eq!(groups.clears.lock().len(), 1);
    assert_eq!(t.target.task_set_cleared_by_peer(4), Err(crate::TmfError::NoSuchLun));
    // Through the owner: the others are told first, while its own tasks (the ones they forwarded
    // to it among them) still run.
    let t = TestLun::disk(1 << 20);
    let groups = NonOwner::new(AccessState::ActiveOptimized, false);
    t.lu.set_port_groups(groups.clone()).unwrap();
    let proxy = t.target.proxy_nexus("iqn.2024-01.test:i,i,0x1", 2);
    *groups.watched.lock() = Some(proxy.clone());
    let forwarded = Recorder::start(&proxy, 1, t.lun);
    assert_eq!(t.target.clear_task_set(&t.nexus, t.lun), Ok(1));
    assert_eq!(*groups.clears.lock(), [1], "told before its own tasks went");
    assert_eq!(forwarded.aborted(), Some(AbortCause::Aborted));
}
