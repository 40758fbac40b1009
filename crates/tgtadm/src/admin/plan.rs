//! From the file's targets and the running ones to the management requests that make the daemon
//! match: whole targets for `--execute`, only the differences for `--update`, removals for
//! `--delete`. Planning is pure (tested without a daemon); `Step`s carry a line to print for
//! `--pretend` and the request to send otherwise.

use super::spec::{Account, Discovery, TargetSpec, DEFAULT_PARAMS};
use rtgt_mgmt::{AccountEntry, AccountOp, LunOp, LunSpec, Op, Param, TargetOp};
use std::collections::BTreeMap;

/// One request, with what it does in words, and the unit (index into `Plan::units`) it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub op: Op,
    pub text: String,
    pub unit: usize,
}

/// Steps that succeed or fail together: the accounts and discovery bindings (unit 0), then one
/// per target. A failed target unit is taken back on its own and the others still run, as tgt
/// brings up the targets it can.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unit {
    /// What the unit is about ("accounts", "target NAME").
    pub label: String,
    /// The target this unit creates: deleted again if one of its steps fails.
    pub created: Option<u32>,
    /// Accounts this unit binds (a new one is deleted again if no unit that uses it succeeded).
    pub users: Vec<String>,
}

/// A running target as the planner needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub tid: u32,
    pub spec: TargetSpec,
    pub sessions: usize,
}

/// What to do and what was left alone (and why).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub notes: Vec<String>,
    pub units: Vec<Unit>,
    /// Targets with sessions that were left as they are (no --force): the run reports failure.
    pub busy: Vec<String>,
    /// Accounts created by this plan (in unit 0): removed again when nothing that succeeded uses
    /// them.
    pub new_accounts: Vec<String>,
    /// Discovery bindings made by this plan (user, outgoing): taken back before the new accounts
    /// are removed, as tgtd refuses to delete an account still bound as incoming.
    pub discovery_bound: Vec<(String, bool)>,
}

/// Which targets an operation is about: `ALL`, `tid=N`, or a target name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    Tid(u32),
    Name(String),
}

impl Selection {
    pub fn parse(text: &str) -> Result<Selection, String> {
        if text == "ALL" {
            return Ok(Selection::All);
        }
        if let Some(n) = text.strip_prefix("tid=") {
            return n.parse().map(Selection::Tid).map_err(|_| format!("'{text}': tid= needs a number"));
        }
        if text.is_empty() {
            return Err("an empty target name".into());
        }
        Ok(Selection::Name(text.to_string()))
    }

    pub fn matches(&self, tid: Option<u32>, name: &str) -> bool {
        match self {
            Selection::All => true,
            Selection::Tid(n) => tid == Some(*n),
            Selection::Name(n) => n.eq_ignore_ascii_case(name),
        }
    }
}

/// As the command line spells it: `ALL`, `tid=N` or the name.
impl std::fmt::Display for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selection::All => f.write_str("ALL"),
            Selection::Tid(n) => write!(f, "tid={n}"),
            Selection::Name(n) => f.write_str(n),
        }
    }
}

struct Planner<'a> {
    plan: Plan,
    /// The unit steps go to now.
    unit: usize,
    /// Accounts as they will be once the steps so far have run.
    accounts: BTreeMap<String, String>,
    running: &'a [Running],
    next_tid: u32,
    /// Tids the file gives its targets (`controller_tid`): never handed out to another.
    reserved: Vec<u32>,
}

impl<'a> Planner<'a> {
    fn new(running: &'a [Running], accounts: &[AccountEntry]) -> Self {
        Planner {
            plan: Plan { units: vec![Unit { label: "accounts".into(), ..Unit::default() }], ..Plan::default() },
            unit: 0,
            accounts: accounts.iter().map(|a| (a.user.clone(), a.password.clone().unwrap_or_default())).collect(),
            running,
            next_tid: running.iter().map(|r| r.tid).max().unwrap_or(0) + 1,
            reserved: Vec::new(),
        }
    }

    /// The tids `want`'s new targets ask for; one a running target holds is refused before
    /// anything runs (tgt's tgt-admin would add the LUNs to that other target).
    fn reserve<'t>(&mut self, want: impl Iterator<Item = &'t TargetSpec>) -> Result<(), String> {
        for t in want {
            let Some(tid) = t.controller_tid.filter(|_| self.find(&t.name).is_none()) else { continue };
            if let Some(r) = self.running.iter().find(|r| r.tid == tid) {
                return Err(format!("controller_tid {tid} of target {} is running target {}", t.name, r.spec.name));
            }
            self.reserved.push(tid);
        }
        Ok(())
    }

    /// A new target's tid: its `controller_tid`, or the next one free; the targets after it
    /// continue from the higher of the two, as tgt's tgt-admin numbers them.
    fn new_tid(&mut self, t: &TargetSpec) -> u32 {
        let tid = match t.controller_tid {
            Some(tid) => tid,
            None => {
                while self.reserved.contains(&self.next_tid) || self.running.iter().any(|r| r.tid == self.next_tid) {
                    self.next_tid += 1;
                }
                self.next_tid
            }
        };
        self.next_tid = self.next_tid.max(tid + 1);
        tid
    }

    fn step(&mut self, op: Op, text: String) {
        self.plan.steps.push(Step { op, text, unit: self.unit });
    }

    /// Steps from here on belong to a new unit about `target`.
    fn begin(&mut self, target: &str) {
        self.plan.units.push(Unit { label: format!("target {target}"), ..Unit::default() });
        self.unit = self.plan.units.len() - 1;
    }

    /// Make sure `account` exists with its password; an existing one with another password is a
    /// conflict (it may be bound elsewhere), reported before anything runs.
    fn ensure_account(&mut self, a: &Account) -> Result<(), String> {
        self.plan.units[self.unit].users.push(a.user.clone());
        match self.accounts.get(&a.user) {
            Some(p) if *p == a.password => Ok(()),
            Some(_) => Err(format!("account {} exists with another password; delete it first", a.user)),
            None => {
                self.accounts.insert(a.user.clone(), a.password.clone());
                self.plan.new_accounts.push(a.user.clone());
                // Accounts are made first, in unit 0: several targets may share one.
                let op = Op::Account(AccountOp::New { user: a.user.clone(), password: a.password.clone() });
                self.plan.steps.push(Step { op, text: format!("account new {}", a.user), unit: 0 });
                Ok(())
            }
        }
    }

    fn bind(&mut self, tid: u32, a: &Account, outgoing: bool, bind: bool) {
        let user = a.user.clone();
        let (op, verb) = if bind {
            (AccountOp::Bind { tid, user, outgoing }, "bind")
        } else {
            (AccountOp::Unbind { tid, user, outgoing }, "unbind")
        };
        let kind = if outgoing { " (outgoing)" } else { "" };
        self.step(Op::Account(op), format!("account {verb} tid {tid} {}{kind}", a.user));
    }

    fn create(&mut self, t: &TargetSpec) -> Result<(), String> {
        let tid = self.new_tid(t);
        self.begin(&t.name);
        self.plan.units[self.unit].created = Some(tid);
        self.step(Op::Target(TargetOp::New { tid, name: t.name.clone() }), format!("target new tid {tid} {}", t.name));
        if !t.params.is_empty() {
            let params: Vec<Param> = t.params.iter().map(|(k, v)| Param::new(k, v)).collect();
            self.step(Op::Target(TargetOp::Update { tid, params }), format!("target update tid {tid} parameters"));
        }
        // CHAP first, access rules last: a new target admits nobody until a rule is bound, and by
        // then its accounts are in place, so it is never reachable without CHAP.
        for a in &t.incoming {
            self.ensure_account(a)?;
            self.bind(tid, a, false, true);
        }
        if let Some(a) = &t.outgoing {
            self.ensure_account(a)?;
            self.bind(tid, a, true, true);
        }
        for (&lun, spec) in &t.luns {
            let what =
                spec.backing_store.clone().unwrap_or_else(|| spec.store.bstype().unwrap_or_default().to_string());
            let op = Op::LogicalUnit(LunOp::New { tid, lun, spec: spec.clone() });
            self.step(op, format!("logicalunit new tid {tid} lun {lun} {what}"));
        }
        if !t.acl.is_empty() {
            let rules = t.acl.clone();
            let text = rules.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(" ");
            self.step(Op::Target(TargetOp::Bind { tid, rules }), format!("target bind tid {tid} {text}"));
        }
        Ok(())
    }

    /// Only what differs between `have` (running as `tid`) and `want`.
    fn reconcile(&mut self, tid: u32, have: &TargetSpec, want: &TargetSpec) -> Result<(), String> {
        self.begin(&want.name);
        let mut params: Vec<Param> = want
            .params
            .iter()
            .filter(|(k, v)| have.params.get(*k) != Some(*v))
            .map(|(k, v)| Param::new(k, v))
            .collect();
        for k in have.params.keys().filter(|k| !want.params.contains_key(*k)) {
            // Back to the default: nop settings to 0, iSCSI keys to their start value.
            let default = DEFAULT_PARAMS.iter().find(|(n, _)| n == k).map(|(_, v)| *v).unwrap_or("0");
            params.push(Param::new(k, default));
        }
        if !params.is_empty() {
            self.step(Op::Target(TargetOp::Update { tid, params }), format!("target update tid {tid} parameters"));
        }
        // What narrows access runs before what widens it, so that no step in between leaves the
        // target more open than both the old and the new configuration: rules removed and new
        // incoming accounts bound first (replacing an account never passes through "no account,
        // no CHAP"), then old incoming accounts unbound and new rules bound.
        let gone: Vec<_> = have.acl.iter().filter(|r| !want.acl.contains(r)).cloned().collect();
        if !gone.is_empty() {
            self.step(Op::Target(TargetOp::Unbind { tid, rules: gone }), format!("target unbind tid {tid}"));
        }
        for a in &want.incoming {
            self.ensure_account(a)?;
            if !have.incoming.iter().any(|h| h.user == a.user) {
                self.bind(tid, a, false, true);
            }
        }
        // A target has one outgoing account: the old one must go before the new one is bound. In
        // between, mutual CHAP logins fail; nobody gets in without authenticating.
        if let Some(a) = &have.outgoing {
            if want.outgoing.as_ref().map(|w| &w.user) != Some(&a.user) {
                self.bind(tid, a, true, false);
            }
        }
        if let Some(a) = &want.outgoing {
            self.ensure_account(a)?;
            if have.outgoing.as_ref().map(|h| &h.user) != Some(&a.user) {
                self.bind(tid, a, true, true);
            }
        }
        for a in have.incoming.iter().filter(|a| !want.incoming.iter().any(|w| w.user == a.user)) {
            self.bind(tid, a, false, false);
        }
        let added: Vec<_> = want.acl.iter().filter(|r| !have.acl.contains(r)).cloned().collect();
        if !added.is_empty() {
            self.step(Op::Target(TargetOp::Bind { tid, rules: added }), format!("target bind tid {tid}"));
        }
        let same = |a: Option<&LunSpec>, b: &LunSpec| {
            a.is_some_and(|a| super::compare::configured_part(a) == super::compare::configured_part(b))
        };
        for (&lun, spec) in &have.luns {
            if !same(want.luns.get(&lun), spec) {
                self.step(
                    Op::LogicalUnit(LunOp::Delete { tid, lun }),
                    format!("logicalunit delete tid {tid} lun {lun}"),
                );
            }
        }
        for (&lun, spec) in &want.luns {
            if !same(have.luns.get(&lun), spec) {
                let op = Op::LogicalUnit(LunOp::New { tid, lun, spec: spec.clone() });
                self.step(op, format!("logicalunit new tid {tid} lun {lun}"));
            }
        }
        Ok(())
    }

    fn find(&self, name: &str) -> Option<&'a Running> {
        self.running.iter().find(|r| r.spec.name.eq_ignore_ascii_case(name))
    }

    fn discovery(&mut self, want: &Discovery, have: &Discovery) -> Result<(), String> {
        // tgt-admin sends the iSNS keys before anything else; one update carries them all.
        let isns = super::spec::isns_changes(&want.isns, &have.isns);
        if !isns.is_empty() {
            let text = isns.iter().map(|p| format!("{}={}", p.name, p.value)).collect::<Vec<_>>().join(" ");
            self.step(Op::System(rtgt_mgmt::SystemOp::Update { params: isns }), format!("system update {text}"));
        }
        for a in &want.incoming {
            self.ensure_account(a)?;
            if !have.incoming.iter().any(|h| h.user == a.user) {
                self.bind(0, a, false, true);
                self.plan.discovery_bound.push((a.user.clone(), false));
            }
        }
        if let Some(a) = &want.outgoing {
            self.ensure_account(a)?;
            if have.outgoing.as_ref().map(|h| &h.user) != Some(&a.user) {
                self.bind(0, a, true, true);
                self.plan.discovery_bound.push((a.user.clone(), true));
            }
        }
        Ok(())
    }
}

/// `--execute`: create every target of the file that is not running (by name).
pub fn execute(
    want: &[TargetSpec],
    discovery: &Discovery,
    running: &[Running],
    have_discovery: &Discovery,
    accounts: &[AccountEntry],
) -> Result<Plan, String> {
    let mut p = Planner::new(running, accounts);
    p.discovery(discovery, have_discovery)?;
    p.reserve(want.iter())?;
    for t in want {
        if p.find(&t.name).is_some() {
            p.plan.notes.push(format!("target {} is already running; use --update to change it", t.name));
            continue;
        }
        p.create(t)?;
    }
    Ok(p.plan)
}

/// `--update`: bring the selected targets in line with the file; with `ALL`, running targets the
/// file no longer has are removed. A target with sessions is left alone unless `force`.
pub fn update(
    want: &[TargetSpec],
    discovery: &Discovery,
    running: &[Running],
    have_discovery: &Discovery,
    accounts: &[AccountEntry],
    selection: &Selection,
    force: bool,
) -> Result<Plan, String> {
    let mut p = Planner::new(running, accounts);
    if *selection == Selection::All {
        p.discovery(discovery, have_discovery)?;
    }
    p.reserve(want.iter().filter(|t| selection.matches(None, &t.name)))?;
    let mut matched = false;
    for t in want {
        let current = p.find(&t.name);
        if !selection.matches(current.map(|r| r.tid), &t.name) {
            continue;
        }
        matched = true;
        match current {
            None => p.create(t)?,
            Some(r) if r.spec == *t => p.plan.notes.push(format!("target {} is up to date", t.name)),
            Some(r) if r.sessions > 0 && !force => {
                p.plan.busy.push(t.name.clone());
                p.plan.notes.push(format!(
                    "target {} has {} active session(s): left unchanged (use --force)",
                    t.name, r.sessions
                ))
            }
            Some(r) => p.reconcile(r.tid, &r.spec, t)?,
        }
    }
    for r in running {
        if want.iter().any(|t| t.name.eq_ignore_ascii_case(&r.spec.name))
            || !selection.matches(Some(r.tid), &r.spec.name)
        {
            continue;
        }
        // Running but no longer in the file (all of them with ALL, or the one named).
        matched = true;
        p.begin(&r.spec.name);
        remove(&mut p.plan, p.unit, r, force);
    }
    if !matched {
        return Err(match selection {
            Selection::All => "nothing to update".into(),
            other => format!("no target {other:?} in the configuration or running"),
        });
    }
    Ok(p.plan)
}

fn remove(plan: &mut Plan, unit: usize, r: &Running, force: bool) {
    if r.sessions > 0 && !force {
        plan.busy.push(r.spec.name.clone());
        plan.notes
            .push(format!("target {} has {} active session(s): not removed (use --force)", r.spec.name, r.sessions));
        return;
    }
    plan.steps.push(Step {
        op: Op::Target(TargetOp::Delete { tid: r.tid, force }),
        text: format!("target delete tid {} {}", r.tid, r.spec.name),
        unit,
    });
}

/// `--delete`: remove the selected running targets.
pub fn delete(running: &[Running], selection: &Selection, force: bool) -> Result<Plan, String> {
    let mut plan = Plan { units: vec![Unit { label: "accounts".into(), ..Unit::default() }], ..Plan::default() };
    let chosen: Vec<&Running> = running.iter().filter(|r| selection.matches(Some(r.tid), &r.spec.name)).collect();
    if chosen.is_empty() && *selection != Selection::All {
        return Err(format!("no running target matches {selection}"));
    }
    for r in chosen {
        plan.units.push(Unit { label: format!("target {}", r.spec.name), ..Unit::default() });
        let unit = plan.units.len() - 1;
        remove(&mut plan, unit, r, force);
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtgt_mgmt::AclEntry;

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
        let plan =
            execute(&[spec("a"), spec("b")], &Discovery::default(), &running, &Discovery::default(), &[]).unwrap();
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
        let err = execute(&[with_tid("b", Some(1))], &Discovery::default(), &running, &Discovery::default(), &[])
            .unwrap_err();
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
            [
                "target update tid 1 parameters",
                "target unbind tid 1",
                "target bind tid 1",
                "logicalunit new tid 1 lun 2"
            ]
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
        let unbind_alice =
            first(&plan, |op| matches!(op, Op::Account(AccountOp::Unbind { user, .. }) if user == "alice"));
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
}
