//! Codes for async-graphql's own errors, which no resolver makes: the
//! [`RequestErrors`] extension sees each stage of a request and gives every
//! error of it that has no code the code of its stage, as Apollo Server's
//! codes tell them apart:
//!
//! - parsing: the text is no GraphQL, `GRAPHQL_PARSE_FAILED` (or, when it
//!   parses, one of async-graphql's own document limits, directives per
//!   field or recursion: `BAD_USER_INPUT` with `extensions.limit`);
//! - validation: a value that does not fit its type, literal or through a
//!   variable, is `BAD_USER_INPUT` naming `extensions.argument` (and
//!   `extensions.variable` when a variable carried it); the schema's depth
//!   backstop is `BAD_USER_INPUT` with `extensions.limit` `depth`;
//!   anything else is `GRAPHQL_VALIDATION_FAILED`;
//! - execution: an argument that fails to convert after validation (an
//!   integer out of range) is `BAD_USER_INPUT` naming the argument; a
//!   subscription sent as a request (not over WebSocket) is
//!   `BAD_USER_INPUT` with `extensions.limit` `operationType`; any other
//!   error without a code is a fault of ours, `INTERNAL_SERVER_ERROR`
//!   (logged, with a fixed message).
//!
//! async-graphql says which rule an error breaks only in its message, so
//! the message prefixes it uses (`Invalid value for argument`, `Failed to
//! parse`) are matched here, in one place, and tested end to end.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextValidation,
};
use async_graphql::parser::Positioned;
use async_graphql::parser::types::{ExecutableDocument, Field, Selection, SelectionSet};
use async_graphql::{
    ErrorExtensionValues, Name, Response, ServerError, ServerResult, ValidationResult, Variables,
};
use async_graphql_value::Value;

use super::code;

/// The extension factory; one [`RequestErrors`] per request.
pub struct Codes;

impl ExtensionFactory for Codes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestErrors::default())
    }
}

/// Codes the errors of one request. It keeps the query text, to find the
/// argument an error is about.
#[derive(Default)]
pub struct RequestErrors {
    query: Mutex<Option<Arc<str>>>,
}

impl RequestErrors {
    fn document(&self) -> Option<ExecutableDocument> {
        let query = self.query.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        async_graphql::parser::parse_query(&*query).ok()
    }
}

#[async_trait::async_trait]
impl Extension for RequestErrors {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        *self.query.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::from(query));
        next.run(ctx, query, variables).await.map_err(|mut err| {
            if has_code(&err) {
                return err;
            }
            if async_graphql::parser::parse_query(query).is_err() {
                set(&mut err, code::GRAPHQL_PARSE_FAILED);
            } else {
                // It parses: one of async-graphql's own document limits.
                let limit =
                    if err.message.contains("directives") { "directives" } else { "nesting" };
                set(&mut err, code::BAD_USER_INPUT).set("limit", limit);
            }
            err
        })
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|mut errors| {
            let mut doc = None;
            for err in errors.iter_mut().filter(|e| !has_code(e)) {
                if let Some(argument) = invalid_argument(&err.message) {
                    let argument = argument.to_owned();
                    let doc = doc.get_or_insert_with(|| self.document());
                    let at = err.locations.first().copied();
                    let variable = doc
                        .as_ref()
                        .zip(at)
                        .and_then(|(doc, at)| find_argument(doc, |name, _| name.pos == at))
                        .and_then(|(_, value)| sole_variable(&value.node));
                    let ext = set(err, code::BAD_USER_INPUT);
                    ext.set("argument", argument);
                    if let Some(variable) = variable {
                        ext.set("variable", variable);
                    }
                } else if is_coercion(&err.message) {
                    // Met while counting the cost, which reads the
                    // arguments of the field the error points at.
                    let undefined = undefined_variable(&err.message).map(str::to_owned);
                    let doc = doc.get_or_insert_with(|| self.document());
                    let at = err.locations.first().copied();
                    let argument = doc
                        .as_ref()
                        .zip(at)
                        .and_then(|(doc, at)| field_argument_at(doc, at, &err.message));
                    let ext = set(err, code::BAD_USER_INPUT);
                    if let Some(variable) = undefined {
                        ext.set("variable", variable);
                    }
                    if let Some((name, value)) = argument {
                        ext.set("argument", name);
                        if let Some(variable) = sole_variable(&value.node) {
                            ext.set("variable", variable);
                        }
                    }
                } else if err.message == "Query is nested too deep." {
                    set(err, code::BAD_USER_INPUT).set("limit", "depth");
                } else {
                    set(err, code::GRAPHQL_VALIDATION_FAILED);
                }
            }
            // A bad argument value is told once: the cost count meets it
            // again, without naming the argument.
            if errors.iter().any(|e| invalid_argument(&e.message).is_some()) {
                errors.retain(|e| !is_coercion(&e.message));
            }
            errors
        })
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut resp = next.run(ctx, operation_name).await;
        let mut doc = None;
        for err in resp.errors.iter_mut().filter(|e| !has_code(e)) {
            if is_coercion(&err.message) {
                let doc = doc.get_or_insert_with(|| self.document());
                let at = err.locations.first().copied();
                let found = doc
                    .as_ref()
                    .zip(at)
                    .and_then(|(doc, at)| find_argument(doc, |_, value| value.pos == at));
                let undefined = undefined_variable(&err.message).map(str::to_owned);
                let ext = set(err, code::BAD_USER_INPUT);
                if let Some(variable) = undefined {
                    ext.set("variable", variable);
                }
                if let Some((name, value)) = found {
                    ext.set("argument", name);
                    if let Some(variable) = sole_variable(&value.node) {
                        ext.set("variable", variable);
                    }
                }
            } else if err.message == SUBSCRIPTION_OVER_HTTP {
                // A subscription sent with POST (or GET): the caller's
                // mistake, refused as the socket refuses a query.
                err.message = "a subscription runs over WebSocket (`graphql-transport-ws` on \
                               /graphql), not with POST or GET"
                    .to_owned();
                set(err, code::BAD_USER_INPUT).set("limit", "operationType");
            } else {
                tracing::error!(error = %err.message, "an error without a code");
                err.message = "internal error".to_owned();
                set(err, code::INTERNAL_SERVER_ERROR);
            }
        }
        resp
    }
}

/// async-graphql's answer to a subscription executed as a request.
const SUBSCRIPTION_OVER_HTTP: &str = "Subscriptions are not supported on this transport.";

fn has_code(err: &ServerError) -> bool {
    err.extensions.as_ref().is_some_and(|e| e.get("code").is_some())
}

fn set<'e>(err: &'e mut ServerError, code: &str) -> &'e mut ErrorExtensionValues {
    let ext = err.extensions.get_or_insert_with(ErrorExtensionValues::default);
    ext.set("code", code);
    ext
}

/// The argument path of async-graphql's `Invalid value for argument
/// "filter.raisedFrom", expected type "DateTime"`.
fn invalid_argument(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("Invalid value for argument \"")?;
    rest.split('"').next()
}

/// Whether async-graphql's message says a value could not be converted
/// to its input type (`InputValueError`), or a variable had no value.
fn is_coercion(message: &str) -> bool {
    message.starts_with("Failed to parse \"")
        || message.starts_with("Expected input type \"")
        || undefined_variable(message).is_some()
}

/// The variable of async-graphql's `Variable id is not defined.` (a value
/// missing at run time; the validation rule's own message quotes `"$id"`).
fn undefined_variable(message: &str) -> Option<&str> {
    let name = message.strip_prefix("Variable ")?.strip_suffix(" is not defined.")?;
    (!name.starts_with('"')).then_some(name)
}

/// The variable a value is, or the only variable it holds.
fn sole_variable(value: &Value) -> Option<String> {
    fn collect<'v>(value: &'v Value, into: &mut Vec<&'v Name>) {
        match value {
            Value::Variable(name) => into.push(name),
            Value::List(items) => items.iter().for_each(|v| collect(v, into)),
            Value::Object(fields) => fields.values().for_each(|v| collect(v, into)),
            _ => {}
        }
    }
    let mut names = Vec::new();
    collect(value, &mut names);
    names.dedup();
    match names.as_slice() {
        [one] => Some(one.to_string()),
        _ => None,
    }
}

/// The argument an error at the field at `at` is about: the field's only
/// argument, or the one holding an integer out of `Int`'s range when the
/// message says so.
fn field_argument_at(
    doc: &ExecutableDocument,
    at: async_graphql::Pos,
    message: &str,
) -> Option<(String, Positioned<Value>)> {
    fn walk(set: &SelectionSet, at: async_graphql::Pos) -> Option<&Field> {
        set.items.iter().find_map(|item| match &item.node {
            Selection::Field(f) if f.pos == at => Some(&f.node),
            Selection::Field(f) => walk(&f.node.selection_set.node, at),
            Selection::InlineFragment(f) => walk(&f.node.selection_set.node, at),
            Selection::FragmentSpread(_) => None,
        })
    }
    let field =
        doc.operations.iter().find_map(|(_, op)| walk(&op.node.selection_set.node, at)).or_else(
            || doc.fragments.values().find_map(|f| walk(&f.node.selection_set.node, at)),
        )?;
    let out_of_range = |v: &Value| matches!(v, Value::Number(n) if n.as_i64().is_none_or(|n| i32::try_from(n).is_err()));
    let found = match field.arguments.as_slice() {
        [one] => Some(one),
        args if message.starts_with("Failed to parse \"Int\"") => {
            let mut hits = args.iter().filter(|(_, v)| out_of_range(&v.node));
            hits.next().filter(|_| hits.next().is_none())
        }
        _ => None,
    };
    found.map(|(name, value)| (name.node.to_string(), value.clone()))
}

/// The first field argument, in the operations and fragments of `doc`,
/// that `matches` (by its name's or its value's position).
fn find_argument(
    doc: &ExecutableDocument,
    matches: impl Fn(&Positioned<Name>, &Positioned<Value>) -> bool + Copy,
) -> Option<(String, Positioned<Value>)> {
    fn walk(
        set: &SelectionSet,
        matches: impl Fn(&Positioned<Name>, &Positioned<Value>) -> bool + Copy,
    ) -> Option<(String, Positioned<Value>)> {
        set.items.iter().find_map(|item| match &item.node {
            Selection::Field(f) => f
                .node
                .arguments
                .iter()
                .find(|(name, value)| matches(name, value))
                .map(|(name, value)| (name.node.to_string(), value.clone()))
                .or_else(|| walk(&f.node.selection_set.node, matches)),
            Selection::InlineFragment(f) => walk(&f.node.selection_set.node, matches),
            Selection::FragmentSpread(_) => None,
        })
    }
    doc.operations
        .iter()
        .find_map(|(_, op)| walk(&op.node.selection_set.node, matches))
        .or_else(|| doc.fragments.values().find_map(|f| walk(&f.node.selection_set.node, matches)))
}
