// bench/subscribers.mjs: N subscribers on one server, each a WebSocket
// speaking graphql-transport-ws (the `ws` package, installed in
// tests/graphql-ws), subscribed to caseEvents; then ROUNDS changes, one at
// a time, each made through HTTP. For each change: the time from sending
// the mutation to the first and to the last subscriber's receipt of its
// event. Prints one JSON object. Run by bench/subscribers.
//
// Environment: BASE (http://127.0.0.1:PORT), TOKEN, RECEIVING (agency id),
// SUBSCRIBERS (1000), ROUNDS (20), SERVER_PID (for its memory).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../tests/graphql-ws/', import.meta.url));
const WebSocket = require('ws');

const { BASE, TOKEN, RECEIVING, SERVER_PID } = process.env;
const N = Number(process.env.SUBSCRIBERS || 1000);
const ROUNDS = Number(process.env.ROUNDS || 20);
const WS = BASE.replace('http://', 'ws://') + '/graphql';

const memory = () => {
  const status = readFileSync(`/proc/${SERVER_PID}/status`, 'utf8');
  const kb = (k) => Number(status.match(new RegExp(`${k}:\\s+(\\d+)`))[1]);
  return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024 };
};

const metric = async (name) => {
  const text = await (await fetch(`${BASE}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  return Number(line.split(' ')[1]);
};

const gql = async (query, variables) => {
  const res = await fetch(`${BASE}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await res.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
};

const before = memory();
let waiting = null; // { at, got, first, last, resolve }
let finished = false;
const sockets = [];
const opened = [];
for (let i = 0; i < N; i++) {
  const ws = new WebSocket(WS, 'graphql-transport-ws');
  sockets.push(ws);
  opened.push(new Promise((resolve, reject) => {
    ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { Authorization: `Bearer ${TOKEN}` } })));
    ws.on('error', reject);
    ws.on('close', (code, reason) => { if (!finished) { console.error(`closed ${code} ${reason}`); process.exit(1); } });
    ws.on('message', (data) => {
      const m = JSON.parse(data);
      if (m.type === 'connection_ack') {
        ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'subscription { caseEvents { cursor node { type caseId version } } }' } }));
        resolve();
      } else if (m.type === 'next' && waiting) {
        // One change per round, and nobody else writes: any event is it.
        const t = performance.now() - waiting.at;
        waiting.got += 1;
        if (waiting.got === 1) waiting.first = t;
        if (waiting.got === N) { waiting.last = t; waiting.resolve(); }
      }
    });
  }));
}
await Promise.all(opened);
for (let i = 0; i < 100 && (await metric('escalations_subscriptions')) < N; i++) {
  await new Promise((r) => setTimeout(r, 100));
}
const live = await metric('escalations_subscriptions');
const withSubscribers = memory();

const rounds = [];
for (let r = 0; r < ROUNDS; r++) {
  // Raise a case; its CASE_RAISED event is what every subscriber waits for.
  const id = crypto.randomUUID();
  let done;
  const arrived = new Promise((resolve) => { done = resolve; });
  waiting = { at: 0, got: 0, first: 0, last: 0, resolve: done };
  waiting.at = performance.now();
  await gql(
    'mutation($i: RaiseCaseInput!) { raiseCase(input: $i) { case { id } } }',
    { i: { receivingAgencyId: RECEIVING, childReference: `BENCH-${id.slice(0, 8)}`, category: 'other', summary: 's' } },
  );
  await Promise.race([arrived, new Promise((r) => setTimeout(r, 30000))]);
  rounds.push({ first: waiting.first, last: waiting.last, got: waiting.got });
  waiting = null;
  await new Promise((r) => setTimeout(r, 200));
}
const after = memory();
finished = true;
for (const ws of sockets) ws.close();

const lasts = rounds.map((r) => r.last).sort((a, b) => a - b);
const q = (p) => lasts[Math.min(lasts.length - 1, Math.ceil((p / 100) * lasts.length) - 1)];
console.log(JSON.stringify({
  subscribers: N,
  live,
  rounds: ROUNDS,
  allReceived: rounds.every((r) => r.got === N),
  lastMs: { p50: q(50), p99: q(99), max: lasts[lasts.length - 1] },
  firstMsMedian: rounds.map((r) => r.first).sort((a, b) => a - b)[Math.floor(ROUNDS / 2)],
  memory: { before, withSubscribers, after },
}));
process.exit(0);
