// The graphql-ws client (what browser front ends use) against the server:
// subscribes to caseEvents with the token in connectionParams, as a
// browser would, and prints one JSON line per event; exits after COUNT
// events, or with an error. Run by tests/api/subscriptions.rs.
//
// Environment: URL (ws://…/graphql), TOKEN, AFTER (a cursor), COUNT.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const { URL, TOKEN, AFTER, COUNT } = process.env;
const want = Number(COUNT);

const client = createClient({
  url: URL,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${TOKEN}` },
  retryAttempts: 0,
  on: { connected: () => console.log(JSON.stringify({ connected: true })) },
});

let seen = 0;
const done = client.subscribe(
  {
    query: `subscription($after: String) {
      caseEvents(after: $after) { cursor node { type caseId version } }
    }`,
    variables: { after: AFTER || null },
  },
  {
    next: (result) => {
      console.log(JSON.stringify(result));
      seen += 1;
      if (seen >= want) {
        done();
        client.dispose();
        process.exit(0);
      }
    },
    error: (err) => {
      // A close event or a list of GraphQL errors.
      const detail = err && err.code ? { code: err.code, reason: err.reason } : err;
      console.log(JSON.stringify({ error: detail }));
      process.exit(2);
    },
    complete: () => {
      console.log(JSON.stringify({ complete: true }));
      process.exit(3);
    },
  },
);
