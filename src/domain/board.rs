//! When the board hears of a case: the stages of each route at or above the
//! first stage whose protocol says the board is told.

use super::protocol::Protocol;

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::catalog::Catalog;

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
