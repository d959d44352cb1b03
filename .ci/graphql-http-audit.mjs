// The GraphQL-over-HTTP audit of the `graphql-http` package (the
// reference implementation of the spec) against a running server:
// `node graphql-http-audit.mjs <url> [token]`. With a token, every audit
// request carries it (`Authorization: Bearer`). Every result must be ok:
// a failure (MUST), a warning (SHOULD) or a notice (MAY) fails the run.
import { auditServer } from 'graphql-http';

const [url, token] = process.argv.slice(2);
if (!url) {
  console.error('usage: graphql-http-audit.mjs <url> [token]');
  process.exit(2);
}
const fetchFn = (input, init = {}) => {
  if (!token) return fetch(input, init);
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};

const results = await auditServer({ url, fetchFn });
const bad = results.filter((r) => r.status !== 'ok');
for (const r of bad) {
  console.log(`${r.status.toUpperCase()} ${r.id} ${r.name}\n    ${r.reason}`);
  if (r.response) {
    try {
      console.log(`    ${r.response.status} ${JSON.stringify(await r.response.text()).slice(0, 300)}`);
    } catch {}
  }
}
console.log(`graphql-http audit of ${url}${token ? ' (with a token)' : ''}: ` +
  `${results.length} audits, ${bad.length} not ok`);
process.exit(bad.length === 0 && results.length > 0 ? 0 : 1);
