//! From the file's targets and the running ones to the management requests that make the daemon
//! match: whole targets for `--execute`, only the differences for `--update` (a LUN whose
//! parameters alone differ is updated in place), removals for `--delete`. Planning is pure (tested without a daemon); `Step`s carry a line to print for
//! `--pretend` and the request to send otherwise.

use super::compare::{lun_diff, LunDiff};
use super::spec::{Account, Discovery, TargetSpec, DEFAULT_PARAMS};
use rtgt_mgmt::{AccountEntry, AccountOp, LunChange, LunOp, Op, Param, TargetOp};
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
        // LUNs changed in place first: they cannot fail on a missing file as a new LUN can, and
        // a run that stops at a bad new LUN has then done what it safely could.
        let diffs = lun_diffs(tid, have, want);
        for (&lun, diff) in &diffs {
            if let LunDiff::InPlace(params) = diff {
                let changes: Vec<LunChange> = params.iter().cloned().map(LunChange::Set).collect();
                let text = params.iter().map(|p| p.to_param()).map(|p| format!("{}={}", p.name, p.value));
                let text = format!("logicalunit update tid {tid} lun {lun} {}", text.collect::<Vec<_>>().join(","));
                self.step(Op::LogicalUnit(LunOp::Update { tid, lun, changes }), text);
            }
        }
        let remade = |lun: &u64| diffs.get(lun).is_none_or(|d| *d == LunDiff::Recreate);
        for &lun in have.luns.keys().filter(|l| remade(l)) {
            self.step(Op::LogicalUnit(LunOp::Delete { tid, lun }), format!("logicalunit delete tid {tid} lun {lun}"));
        }
        for (&lun, spec) in want.luns.iter().filter(|(l, _)| remade(l)) {
            let op = Op::LogicalUnit(LunOp::New { tid, lun, spec: spec.clone() });
            self.step(op, format!("logicalunit new tid {tid} lun {lun}"));
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

/// For each LUN both sides have, what becomes of it (a LUN on one side only is deleted or made).
fn lun_diffs(tid: u32, have: &TargetSpec, want: &TargetSpec) -> BTreeMap<u64, LunDiff> {
    let both = have.luns.iter().filter_map(|(lun, h)| want.luns.get(lun).map(|w| (*lun, h, w)));
    both.map(|(lun, h, w)| (lun, lun_diff(tid, lun, h, w))).collect()
}

/// What bringing a running target in line with the file does to it.
#[derive(Debug, PartialEq, Eq)]
enum Touches {
    Nothing,
    /// LUN parameters changed in place, nothing else: done even while initiators are logged in.
    LunParameters,
    /// Target parameters, access rules, accounts, LUNs added, removed or made again: a target
    /// with sessions is left alone unless --force, as tgt's tgt-admin does.
    More,
}

fn touches(tid: u32, have: &TargetSpec, want: &TargetSpec) -> Touches {
    let target_level = have.params != want.params
        || have.acl != want.acl
        || have.incoming != want.incoming
        || have.outgoing != want.outgoing
        || !have.luns.keys().eq(want.luns.keys());
    let diffs = lun_diffs(tid, have, want);
    if target_level || diffs.values().any(|d| *d == LunDiff::Recreate) {
        Touches::More
    } else if diffs.values().any(|d| matches!(d, LunDiff::InPlace(_))) {
        Touches::LunParameters
    } else {
        Touches::Nothing
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
/// file no longer has are removed. A target with sessions is left alone unless `force`, or unless
/// all that differs are LUN parameters changed in place (which leave its LUNs and sessions be).
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
        match current.map(|r| (r, touches(r.tid, &r.spec, t))) {
            None => p.create(t)?,
            Some((_, Touches::Nothing)) => p.plan.notes.push(format!("target {} is up to date", t.name)),
            // Only LUN parameters changed in place: its initiators keep their sessions and LUNs.
            Some((r, Touches::LunParameters)) => p.reconcile(r.tid, &r.spec, t)?,
            Some((r, Touches::More)) if r.sessions > 0 && !force => {
                p.plan.busy.push(t.name.clone());
                p.plan.notes.push(format!(
                    "target {} has {} active session(s): left unchanged (use --force)",
                    t.name, r.sessions
                ))
            }
            Some((r, Touches::More)) => p.reconcile(r.tid, &r.spec, t)?,
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
mod tests;
