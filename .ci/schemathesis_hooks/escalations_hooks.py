"""Schemathesis hooks for `.ci/schemathesis`.

The pass/fail rule is the server's own: no HTTP 5xx and no GraphQL error
with `extensions.code` INTERNAL_SERVER_ERROR (a database or internal
failure, or a panic). Schemathesis's built-in GraphQL check also counts
every resolver error it cannot classify (FORBIDDEN, NOT_FOUND, CONFLICT,
OUT_OF_SCOPE, ...) as a server error, which for this API is expected
behaviour on random input, so it is replaced by this check.
"""

from hypothesis import strategies as st

import schemathesis
from schemathesis.graphql import nodes

# The API's custom scalars: ISO dates and RFC 3339 date-times, sometimes
# malformed, so that parsing them is fuzzed too.
schemathesis.graphql.scalar(
    "Date",
    st.one_of(st.dates().map(str), st.text(max_size=12)).map(nodes.String),
)
schemathesis.graphql.scalar(
    "DateTime",
    st.one_of(
        st.datetimes().map(lambda d: d.isoformat() + "Z"), st.text(max_size=30)
    ).map(nodes.String),
)


@schemathesis.check
def no_server_failure(ctx, response, case):
    """No 5xx, a JSON body, and no INTERNAL_SERVER_ERROR in it."""
    if response.status_code >= 500:
        raise AssertionError(f"HTTP {response.status_code}: {response.text[:500]}")
    if response.status_code == 429:
        return None
    try:
        body = response.json()
    except ValueError as exc:
        raise AssertionError(f"HTTP {response.status_code}, not JSON: {response.text[:500]}") from exc
    errors = body.get("errors") if isinstance(body, dict) else None
    for error in errors or []:
        extensions = error.get("extensions") if isinstance(error, dict) else None
        if isinstance(extensions, dict) and extensions.get("code") == "INTERNAL_SERVER_ERROR":
            raise AssertionError(f"INTERNAL_SERVER_ERROR: {error}")
    return None
