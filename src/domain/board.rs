//! When the board hears of a case: the stages of each route at or above the
//! first stage whose protocol says the board is told.

use super::protocol::Protocol;

/// Without a repeated-disagreement rule in its protocol, a partnership's
/// statistics count a pair of agencies with this many similar cases as a
/// repeated disagreement.
pub const REPEATED_AT_LEAST: u32 = 2;

/// How many similar disagreements (the one at hand included) make a
/// repeated one: the protocol's rule's `count` (Pan-Sussex step 5), or
/// [`REPEATED_AT_LEAST`]. The trigger of the rule, the flag on the case and
/// the board's statistics all count by it.
///
/// "Similar" is the same everywhere: the same partnership, the same two
/// agencies **either way round** ([`between`]), the same category, and not
/// withdrawn.
pub fn repeated_threshold(protocol: &Protocol) -> u32 {
    protocol.rules().repeated_disagreement().map_or(REPEATED_AT_LEAST, |r| r.count())
}

/// The two agencies a disagreement is between, whichever raised it: the
/// lesser first.
pub fn between<T: Ord>(a: T, b: T) -> (T, T) {
    if a <= b { (a, b) } else { (b, a) }
}

/// `(route, stage)` pairs at which a case is in the board's queue.
pub fn board_stages(protocol: &Protocol) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for route in protocol.routes() {
        let mut told = false;
        for stage in route.stages() {
            told |= stage.board_told();
            if told {
                out.push((route.id().to_owned(), stage.key().to_owned()));
            }
        }
    }
    out
}

/// Whether a change that took an open case on `route` from the stage
/// `before` (none for a raise) to `after` tells the board: it reached a
/// stage whose protocol says the board or its business unit is told
/// (`board_told`). Each such stage tells it once, on arrival; a change
/// within the stage tells nothing.
pub fn tells_board(protocol: &Protocol, route: &str, before: Option<&str>, after: &str) -> bool {
    before != Some(after) && protocol.stage(route, after).is_some_and(|s| s.board_told())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::catalog::Catalog;

    #[test]
    fn repeated_disagreements_count_by_the_protocols_rule_either_way_round() {
        let catalog = Catalog::builtin().unwrap();
        for (protocol, threshold) in [
            ("pan-sussex", 3),
            ("western-bay", 2),
            ("rotherham", 2),
            ("leeds", 2),
            ("six-stage", 2),
        ] {
            assert_eq!(
                repeated_threshold(catalog.latest(protocol).unwrap()),
                threshold,
                "{protocol}"
            );
        }
        assert_eq!(between(2, 1), (1, 2));
        assert_eq!(between(1, 2), (1, 2));
        assert_eq!(between("a", "a"), ("a", "a"));
    }

    #[test]
    fn the_board_is_told_on_arrival_at_each_stage_that_says_so() {
        let catalog = Catalog::builtin().unwrap();
        let wb = catalog.latest("western-bay").unwrap();
        let rh = catalog.latest("rotherham").unwrap();
        for (protocol, route, before, after, told) in [
            (wb, "main", Some("stage-2"), "stage-3", true),
            (wb, "main", Some("stage-3"), "stage-4", true),
            (wb, "main", Some("stage-3"), "stage-3", false),
            (wb, "main", Some("stage-1"), "stage-2", false),
            (wb, "main", None, "informal", false),
            (rh, "challenge", Some("stage-2"), "stage-3", true),
            (rh, "challenge", Some("stage-3"), "stage-4", true),
            (rh, "challenge", Some("stage-1"), "stage-3", true),
            (rh, "challenge", Some("stage-1"), "stage-2", false),
            (rh, "practice", Some("stage-3"), "stage-4", true),
            (rh, "challenge", None, "stage-3", true),
            (wb, "main", Some("stage-2"), "no-such-stage", false),
        ] {
            assert_eq!(
                tells_board(protocol, route, before, after),
                told,
                "{} {route} {before:?} -> {after}",
                protocol.id()
            );
        }
    }

    #[test]
    fn western_bay_tells_the_board_from_stage_3() {
        let catalog = Catalog::builtin().unwrap();
        let wb = catalog.latest("western-bay").unwrap();
        let stages: Vec<String> = board_stages(wb).into_iter().map(|(_, s)| s).collect();
        assert_eq!(stages, ["stage-3", "stage-4"]);
        for p in catalog.all() {
            assert!(!board_stages(p).is_empty(), "{} tells its board at some stage", p.id());
        }
    }
}
