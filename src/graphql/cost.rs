//! The cost of a request, counted before anything of it runs, and the
//! limit it is held to (`GRAPHQL_MAX_COST`).
//!
//! The cost is a bound on the fields the response can hold. Every selected
//! field costs 1; free text costs [`FREE_TEXT`] (it may be long, and each
//! read of it is logged); a paged list (a connection with `first`)
//! multiplies the cost of what it selects by `first`; a list without paging
//! multiplies it by the most items a case keeps ([`PER_CASE_LIST`]);
//! `boardStatistics` costs [`STATISTICS`] more, since it
//! scans a partnership's cases. Lists whose size is the directory's or a protocol's
//! (partnerships, agencies, stages, statistics rows) are not multiplied:
//! their size is the deployment's, not the caller's choice, and the alias
//! limit bounds how often they can be asked for. Fragments count where
//! they are spread. The per-field rules sit on the fields themselves as
//! `#[graphql(complexity = ...)]`; async-graphql adds them up during
//! validation, and [`CostLimit`] refuses the request there, saying its cost
//! and the limit in `extensions`. `http::limits` has already held the
//! document's size with its fragments written out to the same limit, so
//! that adding up is bounded too.
//!
//! The same extension holds the request to its preparation deadline
//! ([`Budget::deadline`]): the document checks, authentication and
//! validation together.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextValidation};
use async_graphql::{ErrorExtensionValues, ServerError, ValidationResult};

use crate::graphql::error::code;

/// The cost of one free-text field.
pub const FREE_TEXT: usize = 10;

/// How many items a per-case list without paging (views, agreed actions,
/// a report's lists) may hold: the most a case keeps.
pub const PER_CASE_LIST: usize = crate::domain::access::MOST_VIEWS_PER_CASE;

/// The cost of `boardStatistics` itself: it scans a partnership's cases.
pub const STATISTICS: usize = 1000;

/// The largest page a connection returns.
pub const MAX_PAGE: usize = 100;

/// The cost of a connection of `first` items selecting `child` each.
pub fn page(first: i32, child: usize) -> usize {
    let n = usize::try_from(first).unwrap_or(0).min(MAX_PAGE);
    list(n, child)
}

/// The cost of a list of at most `items` items selecting `child` each.
pub fn list(items: usize, child: usize) -> usize {
    items.saturating_mul(child).saturating_add(1)
}

/// What one request may spend before it runs: its cost limit, the instant
/// its preparation must be done by, and the client's allowance of cost over
/// time. Attached to each request by `http`.
#[derive(Clone)]
pub struct Budget {
    /// The highest cost accepted.
    pub max_cost: usize,
    /// When the work before execution must be done.
    pub deadline: Instant,
    /// Takes the request's cost from the client's allowance, or says how
    /// long to wait (`None`: the cost can never fit the allowance).
    pub charge: Option<Arc<Charge>>,
}

/// Takes a cost from a client's allowance: `Err(Some(wait))` when it must
/// wait, `Err(None)` when the cost is larger than the allowance can hold.
pub type Charge = dyn Fn(usize) -> Result<(), Option<Duration>> + Send + Sync;

/// The extension that holds each request to its [`Budget`].
pub struct CostLimit;

impl ExtensionFactory for CostLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CostLimit)
    }
}

#[async_trait::async_trait]
impl Extension for CostLimit {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let Some(budget) = ctx.data_opt::<Budget>() else { return Ok(result) };
        if result.complexity > budget.max_cost {
            return Err(vec![refusal(
                format!(
                    "the query costs {} (each field 1, free text {FREE_TEXT}, lists times the \
                     items they may return); at most {} is accepted: ask for fewer fields or \
                     smaller pages",
                    result.complexity, budget.max_cost
                ),
                "cost",
                Some((result.complexity, budget.max_cost)),
            )]);
        }
        if let Some(charge) = &budget.charge {
            match charge(result.complexity) {
                Ok(()) => {}
                Err(wait) => return Err(vec![over_allowance(result.complexity, wait)]),
            }
        }
        if Instant::now() > budget.deadline {
            return Err(vec![refusal(
                "the request took too long to prepare; send a simpler query".to_owned(),
                "prepareTimeout",
                None,
            )]);
        }
        Ok(result)
    }
}

/// A request over its client's allowance of cost: `RATE_LIMITED` with the
/// cost and, when waiting helps, `retryAfter` in whole seconds (`http`
/// makes it a 429 with `Retry-After`).
fn over_allowance(cost: usize, wait: Option<Duration>) -> ServerError {
    let message = match wait {
        Some(wait) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            format!(
                "this client has spent its allowance of cost (the query costs {cost}); retry \
                 after {} s",
                secs.max(1)
            )
        }
        None => format!(
            "the query costs {cost}, more than this client's allowance can ever hold; ask for \
             fewer fields or smaller pages"
        ),
    };
    let mut err = ServerError::new(message, None);
    let ext = err.extensions.get_or_insert_with(ErrorExtensionValues::default);
    ext.set("code", code::RATE_LIMITED);
    ext.set("cost", cost);
    if let Some(wait) = wait {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ext.set("retryAfter", secs.max(1));
    }
    err
}

/// A refusal before execution: `BAD_USER_INPUT`, the limit's name, and
/// the measure against the most accepted.
pub fn refusal(message: String, limit: &str, measure: Option<(usize, usize)>) -> ServerError {
    let mut err = ServerError::new(message, None);
    let ext = err.extensions.get_or_insert_with(ErrorExtensionValues::default);
    ext.set("code", code::BAD_USER_INPUT);
    ext.set("limit", limit);
    if let Some((value, max)) = measure {
        ext.set("value", value);
        ext.set("max", max);
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_multiply_and_pages_are_capped() {
        assert_eq!(page(50, 4), 201);
        assert_eq!(page(0, 4), 1);
        assert_eq!(page(-3, 4), 1);
        assert_eq!(page(1_000_000, 4), 401, "a page is at most 100 items");
        assert_eq!(list(usize::MAX, 2), usize::MAX, "saturates");
    }
}
