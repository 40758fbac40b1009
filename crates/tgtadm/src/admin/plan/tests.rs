//! The planner against hand-made specs: what each operation sends, in which order, and what it
//! leaves alone.

use super::*;
use rtgt_mgmt::{AclEntry, LunParam, LunSpec};

fn spec(name: &str) -> TargetSpec {
    TargetSpec {
        name: name.into(),
        controller_tid: None,
        params: BTreeMap::new(),
        acl: vec![AclEntry::All],
        incoming: vec![Account { user: "alice".into(), password: "pw".into() }],
        outgoing: None,
        luns: [(1, LunSpec::disk(Some("/a".into())))].into_iter().collect(),
    }
}

fn texts(plan: &Plan) -> Vec<&str> {
    plan.steps.iter().map(|s| s.text.as_str()).collect()
}

/// The file's iSNS keys go first, in one update, and only those the daemon does not have.
#[test]
fn isns_settings_are_applied_first_and_only_when_they_differ() {
    let isns = |pairs: &[(&str, &str)]| pairs.iter().map(|(n, v)| Param::new(*n, *v)).collect::<Vec<_>>();
    let want = Discovery {
        isns: isns(&[("iSNSServerIP", "192.0.2.1"), ("iSNSServerPort", "3205"), ("iSNS", "On")]),
        ..Discovery::default()
    };
    let plan = execute(&[spec("a")], &want, &[], &Discovery::default(), &[]).unwrap();
    // The port is already the default: not sent.
    assert_eq!(texts(&plan)[0], "system update iSNSServerIP=192.0.2.1 iSNS=On");
    assert_eq!(plan.steps[0].unit, 0);
    let have = Discovery { isns: isns(&[("iSNSServerIP", "192.0.2.1"), ("iSNS", "On")]), ..Discovery::default() };
    let plan = execute(&[], &want, &[], &have, &[]).unwrap();
    assert!(plan.steps.is_empty(), "{:?}", texts(&plan));
}

#[test]
fn execute_creates_what_is_missing() {
    let running = [Running { tid: 3, spec: spec("a"), sessions: 0 }];
    let plan = execute(&[spec("a"), spec("b")], &Discovery::default(), &running, &Discovery::default(), &[]).unwrap();
    assert_eq!(
        texts(&plan),
        [
            "target new tid 4 b",
            "account new alice",
            "account bind tid 4 alice",
            "logicalunit new tid 4 lun 1 /a",
            "target bind tid 4 ALL"
        ]
    );
    assert_eq!(plan.units[1].created, Some(4));
    // The account is made in unit 0, the target's steps are unit 1.
    assert_eq!(plan.steps.iter().map(|s| s.unit).collect::<Vec<_>>(), [1, 0, 1, 1, 1]);
    assert_eq!(plan.notes.len(), 1);
}

/// A `controller_tid` is used as given, the targets after it continue from there, and an
/// automatic tid never takes one the file reserves; a tid a running target holds is refused.
#[test]
fn controller_tids_are_kept_and_skipped() {
    let with_tid = |name: &str, tid: Option<u32>| TargetSpec { controller_tid: tid, ..spec(name) };
    let want = [with_tid("a", None), with_tid("b", Some(2)), with_tid("c", Some(7)), with_tid("d", None)];
    let running = [Running { tid: 1, spec: spec("x"), sessions: 0 }];
    let plan = execute(&want, &Discovery::default(), &running, &Discovery::default(), &[]).unwrap();
    let created: Vec<Option<u32>> = plan.units[1..].iter().map(|u| u.created).collect();
    assert_eq!(created, [Some(3), Some(2), Some(7), Some(8)]);
    let err =
        execute(&[with_tid("b", Some(1))], &Discovery::default(), &running, &Discovery::default(), &[]).unwrap_err();
    assert_eq!(err, "controller_tid 1 of target b is running target x");
}

#[test]
fn conflicting_password_is_refused_before_anything_runs() {
    let accounts = [AccountEntry {
        user: "alice".into(),
        password: Some("other".into()),
        discovery: false,
        discovery_outgoing: false,
    }];
    let e = execute(&[spec("a")], &Discovery::default(), &[], &Discovery::default(), &accounts).unwrap_err();
    assert!(e.contains("another password"));
}

#[test]
fn update_touches_only_differences_and_respects_sessions() {
    let mut want = spec("a");
    want.params.insert("MaxConnections".into(), "2".into());
    want.luns.insert(2, LunSpec::disk(Some("/b".into())));
    want.acl = vec![AclEntry::InitiatorName("iqn.x".into())];
    let mut stale = spec("gone");
    stale.luns.clear();
    let running = [
        Running { tid: 1, spec: spec("a"), sessions: 0 },
        Running { tid: 2, spec: stale.clone(), sessions: 1 },
        Running { tid: 5, spec: spec("same"), sessions: 0 },
    ];
    let accounts = [AccountEntry {
        user: "alice".into(),
        password: Some("pw".into()),
        discovery: false,
        discovery_outgoing: false,
    }];
    let d = Discovery::default();
    let want_all = [want.clone(), spec("same")];
    let plan = update(&want_all, &d, &running, &d, &accounts, &Selection::All, false).unwrap();
    assert_eq!(
        texts(&plan),
        ["target update tid 1 parameters", "target unbind tid 1", "target bind tid 1", "logicalunit new tid 1 lun 2"]
    );
    assert!(plan.notes.iter().any(|n| n.contains("gone has 1 active session")));
    assert!(plan.notes.iter().any(|n| n.contains("same is up to date")));
    let forced = update(&want_all, &d, &running, &d, &accounts, &Selection::All, true).unwrap();
    assert!(texts(&forced).contains(&"target delete tid 2 gone"));
    // A target with sessions is left alone unless forced.
    let busy = [Running { tid: 1, spec: spec("a"), sessions: 2 }];
    let plan = update(&[want.clone()], &d, &busy, &d, &accounts, &Selection::Tid(1), false).unwrap();
    assert!(plan.steps.is_empty());
    let plan = update(&[want], &d, &busy, &d, &accounts, &Selection::Name("A".into()), true).unwrap();
    assert_eq!(plan.steps.len(), 4);
}

/// Where the first step of `kind` is in the plan.
fn first(plan: &Plan, kind: impl Fn(&Op) -> bool) -> usize {
    plan.steps.iter().position(|s| kind(&s.op)).unwrap_or_else(|| panic!("{:#?}", texts(plan)))
}

fn is_acl_bind(op: &Op) -> bool {
    matches!(op, Op::Target(TargetOp::Bind { .. }))
}

/// A new target's access rules are what let initiators in: its CHAP accounts must be bound
/// before, or it takes AuthMethod=None logins in between.
#[test]
fn a_new_target_binds_its_accounts_before_its_access_rules() {
    let mut t = spec("a");
    t.outgoing = Some(Account { user: "tgt".into(), password: "pw2".into() });
    t.acl = vec![AclEntry::All, AclEntry::InitiatorName("iqn.x".into())];
    let plan = execute(&[t], &Discovery::default(), &[], &Discovery::default(), &[]).unwrap();
    let rules = first(&plan, is_acl_bind);
    let last_account = plan.steps.iter().rposition(|s| matches!(s.op, Op::Account(_))).unwrap();
    assert!(last_account < rules, "{:#?}", texts(&plan));
}

/// `--update` replacing the only incoming account binds the new one before it unbinds the old,
/// so the target never passes through "no incoming account" (open without CHAP).
#[test]
fn update_binds_the_new_account_before_unbinding_the_old() {
    let accounts = [AccountEntry {
        user: "alice".into(),
        password: Some("pw".into()),
        discovery: false,
        discovery_outgoing: false,
    }];
    let mut want = spec("a");
    want.incoming = vec![Account { user: "bob".into(), password: "bobpw".into() }];
    want.acl.push(AclEntry::InitiatorName("iqn.x".into()));
    let running = [Running { tid: 1, spec: spec("a"), sessions: 0 }];
    let d = Discovery::default();
    let plan = update(&[want], &d, &running, &d, &accounts, &Selection::All, false).unwrap();
    let bind_bob = first(&plan, |op| matches!(op, Op::Account(AccountOp::Bind { user, .. }) if user == "bob"));
    let unbind_alice = first(&plan, |op| matches!(op, Op::Account(AccountOp::Unbind { user, .. }) if user == "alice"));
    assert!(bind_bob < unbind_alice, "{:#?}", texts(&plan));
    // A rule the file adds comes after every account change.
    assert!(unbind_alice < first(&plan, is_acl_bind), "{:#?}", texts(&plan));
}

#[test]
fn selections() {
    assert_eq!(Selection::parse("ALL").unwrap(), Selection::All);
    assert_eq!(Selection::parse("tid=4").unwrap(), Selection::Tid(4));
    assert!(Selection::parse("tid=x").is_err());
    assert_eq!(Selection::parse("iqn.a").unwrap(), Selection::Name("iqn.a".into()));
    let running = [Running { tid: 1, spec: spec("a"), sessions: 1 }];
    assert!(delete(&running, &Selection::All, false).unwrap().steps.is_empty());
    assert_eq!(delete(&running, &Selection::Tid(1), true).unwrap().steps.len(), 1);
    // Named as the command line spells it.
    assert_eq!(delete(&running, &Selection::Tid(9), true).unwrap_err(), "no running target matches tid=9");
    let name = Selection::parse("iqn.x:gone").unwrap();
    assert_eq!(delete(&running, &name, true).unwrap_err(), "no running target matches iqn.x:gone");
}

/// A running target with one LUN on `path` with `params`, and `sessions` logged in.
fn running_with(path: &str, params: Vec<LunParam>, sessions: usize) -> [Running; 1] {
    let mut have = spec("a");
    have.luns.insert(1, LunSpec { params, ..LunSpec::disk(Some(path.into())) });
    [Running { tid: 1, spec: have, sessions }]
}

fn want_with(path: &str, params: Vec<LunParam>) -> TargetSpec {
    let mut want = spec("a");
    want.luns.insert(1, LunSpec { params, ..LunSpec::disk(Some(path.into())) });
    want
}

fn accounts() -> [AccountEntry; 1] {
    [AccountEntry { user: "alice".into(), password: Some("pw".into()), discovery: false, discovery_outgoing: false }]
}

const CACHE_OFF: &str = "8:0:18:16:0:255:255:0:0:255:255:255:255:128:20:0:0:0:0:0:0";

/// Only LUN parameters differ: one update of that LUN with only what changed, done even with
/// sessions and without --force (nothing is deleted under the initiators).
#[test]
fn lun_parameters_are_updated_in_place_even_with_sessions() {
    let running = running_with("/a", vec![LunParam::ProductId("P".into()), LunParam::VendorId("OLD".into())], 2);
    let want = want_with(
        "/a",
        vec![LunParam::ModePage(CACHE_OFF.into()), LunParam::ProductId("P".into()), LunParam::VendorId("NEW".into())],
    );
    let d = Discovery::default();
    let plan = update(&[want], &d, &running, &d, &accounts(), &Selection::All, false).unwrap();
    assert_eq!(texts(&plan), [format!("logicalunit update tid 1 lun 1 vendor_id=NEW,mode_page={CACHE_OFF}")]);
    let changes =
        vec![LunChange::Set(LunParam::VendorId("NEW".into())), LunChange::Set(LunParam::ModePage(CACHE_OFF.into()))];
    assert_eq!(plan.steps[0].op, Op::LogicalUnit(LunOp::Update { tid: 1, lun: 1, changes }));
    assert!(plan.busy.is_empty() && plan.notes.is_empty(), "{:?}", plan.notes);
}

/// A parameter the file no longer gives goes back to its default, as a LUN made from the file
/// would have it; a value spelled out that equals the default is no change.
#[test]
fn a_parameter_taken_out_goes_back_to_its_default() {
    let running = running_with("/a", vec![LunParam::ScsiSn("SN1".into()), LunParam::VendorId("OLD".into())], 1);
    let d = Discovery::default();
    let want = want_with("/a", vec![LunParam::ProductRev("0001".into())]);
    let plan = update(&[want], &d, &running, &d, &accounts(), &Selection::All, false).unwrap();
    assert_eq!(texts(&plan), ["logicalunit update tid 1 lun 1 scsi_sn=beaf11,vendor_id=IET"]);
    let same = want_with("/a", vec![LunParam::ScsiSn("SN1".into()), LunParam::VendorId("OLD".into())]);
    let plan = update(&[same], &d, &running, &d, &accounts(), &Selection::All, false).unwrap();
    assert!(plan.steps.is_empty() && plan.notes == ["target a is up to date"], "{:?}", plan.notes);
}

/// What a LUN is made of (its backing store here) still needs it deleted and made again: with
/// sessions that waits for --force; forced, the in-place change of another LUN comes first.
#[test]
fn a_new_backing_store_still_makes_the_lun_again() {
    let mut running = running_with("/a", vec![], 1);
    running[0].spec.luns.insert(2, LunSpec::disk(Some("/b".into())));
    let mut want = want_with("/a2", vec![]);
    want.luns.insert(2, LunSpec { params: vec![LunParam::Readonly(true)], ..LunSpec::disk(Some("/b".into())) });
    let d = Discovery::default();
    let plan = update(std::slice::from_ref(&want), &d, &running, &d, &accounts(), &Selection::All, false).unwrap();
    assert!(plan.steps.is_empty() && plan.busy == ["a"], "{:?}", texts(&plan));
    let plan = update(&[want], &d, &running, &d, &accounts(), &Selection::All, true).unwrap();
    assert_eq!(
        texts(&plan),
        ["logicalunit update tid 1 lun 2 readonly=1", "logicalunit delete tid 1 lun 1", "logicalunit new tid 1 lun 1"]
    );
}

/// The daemon replaces a LUN's mode page but cannot drop one: `write-cache on` after `off` (the
/// page gone from the file) makes the LUN again, as do other changes beside it on a busy target.
#[test]
fn a_dropped_mode_page_makes_the_lun_again() {
    let running = running_with("/a", vec![LunParam::ModePage(CACHE_OFF.into())], 1);
    let d = Discovery::default();
    let want = want_with("/a", vec![LunParam::VendorId("NEW".into())]);
    let plan = update(std::slice::from_ref(&want), &d, &running, &d, &accounts(), &Selection::All, false).unwrap();
    assert_eq!(plan.busy, ["a"]);
    let plan = update(&[want], &d, &running, &d, &accounts(), &Selection::All, true).unwrap();
    assert_eq!(texts(&plan), ["logicalunit delete tid 1 lun 1", "logicalunit new tid 1 lun 1"]);
    // A page replaced by another of the same code is an update.
    let on = CACHE_OFF.replacen(":16:", ":20:", 1);
    let want = want_with("/a", vec![LunParam::ModePage(on.clone())]);
    let plan = update(&[want], &d, &running, &d, &accounts(), &Selection::All, false).unwrap();
    assert_eq!(texts(&plan), [format!("logicalunit update tid 1 lun 1 mode_page={on}")]);
}
