//! What changed between two versions of a protocol, for a board to read
//! before it publishes or adopts one: routes and stages added, removed or
//! renamed, time limits, leads' roles, the sides that may act, milestones,
//! whether the board is told, and the policy table's rows (as in
//! `policy.matrix`) added and removed.
//!
//! Routes, stages and milestones are matched by id and key, not position.
//! A path is written as validation writes it (`routes[0].stages[2].…`),
//! with the indexes of the version the entry is about: the newer one,
//! or the older one for what was removed.

use std::fmt::Write as _;

use super::policy::{self, Action, PolicyRow};
use super::protocol::{Protocol, Route, Stage};

/// The kind of one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A route the older version lacks.
    RouteAdded,
    /// A route the newer version lacks.
    RouteRemoved,
    /// A stage (by key) the older version's route lacks.
    StageAdded,
    /// A stage the newer version's route lacks.
    StageRemoved,
    /// A stage keeps its key under another name.
    StageRenamed,
    /// A stage's `time_limit_working_days` changed (or came or went).
    TimeLimitChanged,
    /// The roles of a stage's raising or receiving lead changed.
    LeadRolesChanged,
    /// The side that may take an action at a stage changed.
    SideChanged,
    /// A milestone (by key) the older stage lacks.
    MilestoneAdded,
    /// A milestone the newer stage lacks.
    MilestoneRemoved,
    /// A milestone's days, start, record, side or roles changed.
    MilestoneChanged,
    /// Whether reaching the stage tells the board changed.
    BoardToldChanged,
    /// A row of the policy table the older version lacks.
    PolicyRowAdded,
    /// A row of the policy table the newer version lacks.
    PolicyRowRemoved,
}

/// One change from the older version to the newer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What changed.
    pub kind: ChangeKind,
    /// Where (see the module documentation).
    pub path: String,
    /// The route it concerns.
    pub route: String,
    /// The stage it concerns, if one.
    pub stage: Option<String>,
    /// The value before, if there was one.
    pub before: Option<String>,
    /// The value after, if there is one.
    pub after: Option<String>,
}

/// Every change from `from` to `to`, route by route in `to`'s order (then
/// the removed ones), stage by stage, the policy rows last.
pub fn diff(from: &Protocol, to: &Protocol) -> Vec<Change> {
    let mut out = Vec::new();
    for (ri, route) in to.routes().iter().enumerate() {
        let at = format!("routes[{ri}]");
        match from.route(route.id()) {
            None => out.push(entry(
                ChangeKind::RouteAdded,
                at,
                route.id(),
                None,
                None,
                Some(route.name()),
            )),
            Some(old) => stages(&mut out, old, route, &at),
        }
    }
    for (ri, route) in from.routes().iter().enumerate() {
        if to.route(route.id()).is_none() {
            let at = format!("routes[{ri}]");
            out.push(entry(
                ChangeKind::RouteRemoved,
                at,
                route.id(),
                None,
                Some(route.name()),
                None,
            ));
        }
    }
    policy_rows(&mut out, from, to);
    out
}

fn entry(
    kind: ChangeKind,
    path: String,
    route: &str,
    stage: Option<&str>,
    before: Option<&str>,
    after: Option<&str>,
) -> Change {
    Change {
        kind,
        path,
        route: route.to_owned(),
        stage: stage.map(str::to_owned),
        before: before.map(str::to_owned),
        after: after.map(str::to_owned),
    }
}

fn stages(out: &mut Vec<Change>, old: &Route, new: &Route, route_at: &str) {
    let route = new.id();
    for (si, stage) in new.stages().iter().enumerate() {
        let at = format!("{route_at}.stages[{si}]");
        let key = Some(stage.key());
        let Some(before) = old.stage(stage.key()) else {
            out.push(entry(ChangeKind::StageAdded, at, route, key, None, Some(stage.name())));
            continue;
        };
        if before.name() != stage.name() {
            let path = format!("{at}.name");
            out.push(entry(
                ChangeKind::StageRenamed,
                path,
                route,
                key,
                Some(before.name()),
                Some(stage.name()),
            ));
        }
        if before.time_limit_working_days() != stage.time_limit_working_days() {
            let days = |s: &Stage| s.time_limit_working_days().map(|d| d.to_string());
            out.push(Change {
                kind: ChangeKind::TimeLimitChanged,
                path: format!("{at}.time_limit_working_days"),
                route: route.to_owned(),
                stage: key.map(str::to_owned),
                before: days(before),
                after: days(stage),
            });
        }
        for (side, was, is) in [
            ("raising_lead", before.raising_lead(), stage.raising_lead()),
            ("receiving_lead", before.receiving_lead(), stage.receiving_lead()),
        ] {
            if was.roles() != is.roles() {
                let path = format!("{at}.{side}.roles");
                let (b, a) = (roles(was.roles()), roles(is.roles()));
                out.push(entry(ChangeKind::LeadRolesChanged, path, route, key, Some(&b), Some(&a)));
            }
        }
        for action in Action::ALL {
            let (was, is) = (before.sides().side(action), stage.sides().side(action));
            if was != is {
                let path = format!("{at}.sides.{action}");
                let (b, a) = (was.map(|s| s.as_str()), is.map(|s| s.as_str()));
                out.push(entry(ChangeKind::SideChanged, path, route, key, b, a));
            }
        }
        milestones(out, before, stage, route, &at);
        if before.board_told() != stage.board_told() {
            let path = format!("{at}.board_told");
            let (b, a) = (before.board_told().to_string(), stage.board_told().to_string());
            out.push(entry(ChangeKind::BoardToldChanged, path, route, key, Some(&b), Some(&a)));
        }
    }
    for (si, stage) in old.stages().iter().enumerate() {
        if new.stage(stage.key()).is_none() {
            let at = format!("{route_at}.stages[{si}]");
            out.push(entry(
                ChangeKind::StageRemoved,
                at,
                route,
                Some(stage.key()),
                Some(stage.name()),
                None,
            ));
        }
    }
}

fn roles(list: &[crate::domain::role::Role]) -> String {
    list.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
}

fn milestones(out: &mut Vec<Change>, old: &Stage, new: &Stage, route: &str, stage_at: &str) {
    let key = Some(new.key());
    let describe = |stage: &Stage, i: usize| {
        let list = stage.milestones();
        let m = &list[i];
        let previous = i.checked_sub(1).map(|p| &list[p]);
        let after = match m.after(previous) {
            crate::domain::milestone::After::Start => "the stage's start".to_owned(),
            crate::domain::milestone::After::Milestone(p) => p.to_owned(),
        };
        let mut text = String::new();
        let _ = write!(
            text,
            "{} working days after {after}: a {} record by the {} side ({})",
            m.within_working_days(),
            m.record().as_str(),
            m.side().as_str(),
            roles(m.roles()),
        );
        text
    };
    for (mi, m) in new.milestones().iter().enumerate() {
        let at = format!("{stage_at}.milestones[{mi}]");
        match old.milestones().iter().position(|o| o.key() == m.key()) {
            None => {
                let now = describe(new, mi);
                out.push(entry(ChangeKind::MilestoneAdded, at, route, key, None, Some(&now)));
            }
            Some(oi) => {
                let (was, now) = (describe(old, oi), describe(new, mi));
                if was != now {
                    out.push(entry(
                        ChangeKind::MilestoneChanged,
                        at,
                        route,
                        key,
                        Some(&was),
                        Some(&now),
                    ));
                }
            }
        }
    }
    for (mi, m) in old.milestones().iter().enumerate() {
        if !new.milestones().iter().any(|n| n.key() == m.key()) {
            let at = format!("{stage_at}.milestones[{mi}]");
            let was = describe(old, mi);
            out.push(entry(ChangeKind::MilestoneRemoved, at, route, key, Some(&was), None));
        }
    }
}

/// The rows of the policy table that differ: a changed row is the old one
/// removed and the new one added.
fn policy_rows(out: &mut Vec<Change>, from: &Protocol, to: &Protocol) {
    let (old, new) = (policy::table(from), policy::table(to));
    let same_place = |a: &PolicyRow, b: &PolicyRow| {
        a.route == b.route && a.stage == b.stage && a.action == b.action
    };
    let path = |p: &Protocol, row: &PolicyRow| match (
        p.routes().iter().position(|r| r.id() == row.route),
        p.route(&row.route).and_then(|r| r.position(&row.stage)),
    ) {
        (Some(r), Some(s)) => format!("routes[{r}].stages[{s}].allow.{}", row.action),
        _ => row.action.as_str().to_owned(),
    };
    let stage = |row: &PolicyRow| (row.stage != "*").then(|| row.stage.clone());
    for row in &old {
        if !new.iter().any(|n| same_place(n, row) && n == row) {
            out.push(Change {
                kind: ChangeKind::PolicyRowRemoved,
                path: path(from, row),
                route: row.route.clone(),
                stage: stage(row),
                before: Some(row.line().trim_end().to_owned()),
                after: None,
            });
        }
    }
    for row in &new {
        if !old.iter().any(|o| same_place(o, row) && o == row) {
            out.push(Change {
                kind: ChangeKind::PolicyRowAdded,
                path: path(to, row),
                route: row.route.clone(),
                stage: stage(row),
                before: None,
                after: Some(row.line().trim_end().to_owned()),
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::protocol::{builtin_texts, parse_protocol};

    fn text(file: &str) -> &'static str {
        builtin_texts().into_iter().find(|(f, _)| *f == file).unwrap().1
    }

    fn parse(t: &str) -> Protocol {
        parse_protocol(t).unwrap()
    }

    /// The (kind, path, before, after) of each change from `from` to `to`.
    #[track_caller]
    fn check(
        name: &str,
        from: &str,
        to: &str,
        expected: &[(ChangeKind, &str, Option<&str>, Option<&str>)],
    ) {
        let got: Vec<(ChangeKind, String, Option<String>, Option<String>)> =
            diff(&parse(from), &parse(to))
                .into_iter()
                .map(|c| (c.kind, c.path, c.before, c.after))
                .collect();
        let want: Vec<(ChangeKind, String, Option<String>, Option<String>)> = expected
            .iter()
            .map(|(k, p, b, a)| (*k, (*p).to_owned(), b.map(str::to_owned), a.map(str::to_owned)))
            .collect();
        assert_eq!(got, want, "{name}");
    }

    #[test]
    fn what_changed_between_two_versions() {
        use ChangeKind as K;
        let wb = text("western_bay.toml");
        let next = |t: String| t.replacen("version = 1", "version = 2", 1);
        check("nothing", wb, &next(wb.to_owned()), &[]);
        check(
            "a stage renamed",
            wb,
            &next(wb.replacen("name = \"Manager to manager\"", "name = \"Managers\"", 1)),
            &[(
                K::StageRenamed,
                "routes[0].stages[1].name",
                Some("Manager to manager"),
                Some("Managers"),
            )],
        );
        check(
            "a time limit added",
            wb,
            &next(wb.replacen(
                "key = \"stage-2\"\n",
                "key = \"stage-2\"\ntime_limit_working_days = 5\n",
                1,
            )),
            &[(
                K::TimeLimitChanged,
                "routes[0].stages[2].time_limit_working_days",
                None,
                Some("5"),
            )],
        );
        check(
            "a lead's roles",
            wb,
            &next(wb.replacen(
                "receiving_lead = { roles = [\"manager\"], wording = \"The manager or supervisor",
                "receiving_lead = { roles = [\"manager\", \"safeguarding_lead\"], wording = \"The manager or supervisor",
                1,
            )),
            &[(
                K::LeadRolesChanged,
                "routes[0].stages[1].receiving_lead.roles",
                Some("manager"),
                Some("manager, safeguarding_lead"),
            )],
        );
        check(
            "the board told at stage 2 too",
            wb,
            &next(wb.replacen("key = \"stage-2\"\n", "key = \"stage-2\"\nboard_told = true\n", 1)),
            &[(K::BoardToldChanged, "routes[0].stages[2].board_told", Some("false"), Some("true"))],
        );
        check(
            "a side and its policy row",
            wb,
            &next(wb.replacen(
                "sides = { escalate = \"raising\" }\n\n[routes.stages.allow]\nraise = []\nstart_higher = []\nadd_record = [\"practitioner\", \"manager\", \"safeguarding_lead\"]\nrecord_view = [\"practitioner\", \"manager\", \"safeguarding_lead\"]\nagree_action = [\"practitioner\", \"manager\", \"safeguarding_lead\"]\nescalate = [\"manager\"",
                "sides = { escalate = \"either\" }\n\n[routes.stages.allow]\nraise = []\nstart_higher = []\nadd_record = [\"practitioner\", \"manager\", \"safeguarding_lead\"]\nrecord_view = [\"practitioner\", \"manager\", \"safeguarding_lead\"]\nagree_action = [\"practitioner\", \"manager\", \"safeguarding_lead\"]\nescalate = [\"manager\"",
                1,
            )),
            &[
                (K::SideChanged, "routes[0].stages[1].sides.escalate", Some("raising"), Some("either")),
                (K::PolicyRowRemoved, "routes[0].stages[1].allow.escalate", Some("escalate         .  Y  Y  Y  .  raising"), None),
                (K::PolicyRowAdded, "routes[0].stages[1].allow.escalate", None, Some("escalate         .  Y  Y  Y  .  either")),
            ],
        );
        check(
            "a role may no longer read the audit trail at stage 1",
            wb,
            &next(wb.replacen(
                "read_audit_trail = [\"safeguarding_lead\", \"head_of_service\", \"board_chair\"]\nread_report = []\n\n[[routes.stages]]\nkey = \"stage-2\"",
                "read_audit_trail = [\"head_of_service\", \"board_chair\"]\nread_report = []\n\n[[routes.stages]]\nkey = \"stage-2\"",
                1,
            )),
            &[
                (K::PolicyRowRemoved, "routes[0].stages[1].allow.read_audit_trail", Some("read_audit_trail .  .  Y  Y  Y"), None),
                (K::PolicyRowAdded, "routes[0].stages[1].allow.read_audit_trail", None, Some("read_audit_trail .  .  .  Y  Y")),
            ],
        );
    }

    #[test]
    fn stages_and_milestones_added_and_removed() {
        use ChangeKind as K;
        // Rotherham's practice route has milestones; Western Bay has none.
        let rh = parse(text("rotherham.toml"));
        let wb = parse(text("western_bay.toml"));
        let changes = diff(&wb, &rh);
        let kinds = |k: K| changes.iter().filter(|c| c.kind == k).count();
        assert_eq!(kinds(K::RouteRemoved), usize::from(rh.route("main").is_none()));
        assert_eq!(
            kinds(K::RouteAdded),
            rh.routes().iter().filter(|r| wb.route(r.id()).is_none()).count()
        );
        // Back and forth: what one adds the other removes.
        let back = diff(&rh, &wb);
        let count = |list: &[Change], k: K| list.iter().filter(|c| c.kind == k).count();
        for (a, b) in [
            (K::RouteAdded, K::RouteRemoved),
            (K::StageAdded, K::StageRemoved),
            (K::MilestoneAdded, K::MilestoneRemoved),
            (K::PolicyRowAdded, K::PolicyRowRemoved),
        ] {
            assert_eq!(count(&changes, a), count(&back, b), "{a:?}");
        }
        // A stage removed from Western Bay: its rows go with it.
        let wb_text = text("western_bay.toml");
        let cut = wb_text.find("[[routes.stages]]\nkey = \"stage-4\"").unwrap();
        let shorter = wb_text[..cut].replacen("version = 1", "version = 2", 1).replacen(
            "escalate = [\"head_of_service\"]",
            "escalate = []",
            1,
        );
        let shorter = parse_protocol(&shorter).unwrap();
        let changes = diff(&wb, &shorter);
        assert!(
            changes.iter().any(|c| c.kind == K::StageRemoved && c.path == "routes[0].stages[4]")
        );
        let removed_rows = changes
            .iter()
            .filter(|c| c.kind == K::PolicyRowRemoved && c.stage.as_deref() == Some("stage-4"))
            .count();
        assert_eq!(removed_rows, Action::ALL.len() - 1);
    }

    #[test]
    fn a_milestone_changed() {
        use ChangeKind as K;
        let rh_text = text("rotherham.toml");
        let rh = parse(rh_text);
        let (ri, si, stage) = rh
            .routes()
            .iter()
            .enumerate()
            .flat_map(|(ri, r)| r.stages().iter().enumerate().map(move |(si, s)| (ri, si, s)))
            .find(|(_, _, s)| !s.milestones().is_empty())
            .expect("a stage with milestones");
        let m = &stage.milestones()[0];
        let days = m.within_working_days();
        assert!(days > 1);
        let needle = format!("within_working_days = {days}");
        assert!(rh_text.contains(&needle), "{needle}");
        let changed = rh_text.replacen("version = 1", "version = 2", 1).replacen(
            &needle,
            &format!("within_working_days = {}", days - 1),
            1,
        );
        let changed = parse_protocol(&changed).unwrap();
        let got: Vec<Change> = diff(&rh, &changed)
            .into_iter()
            .filter(|c| c.kind != K::PolicyRowAdded && c.kind != K::PolicyRowRemoved)
            .collect();
        assert_eq!(got.len(), 1, "{got:?}");
        let c = &got[0];
        assert_eq!(c.kind, K::MilestoneChanged);
        assert!(
            c.path.starts_with(&format!("routes[{ri}].stages[{si}].milestones[")),
            "{}",
            c.path
        );
        assert!(c.before.as_deref().unwrap().starts_with(&format!("{days} working days")));
        assert!(c.after.as_deref().unwrap().starts_with(&format!("{} working days", days - 1)));
    }
}
