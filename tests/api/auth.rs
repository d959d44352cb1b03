//! Tokens and scoping over HTTP.
