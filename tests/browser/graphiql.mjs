// GraphiQL in headless Chromium, as a person would use it, with no network
// but the server's (tests/api/graphiql.rs runs this under node).
//
// Opens URL (the server's /graphql), refuses every request that is not to
// the server's own origin (and reports it), waits for the editor, puts
// TOKEN in the headers pane, then for each query of QUERIES (a JSON array)
// types it into the query editor, presses the run button and reads what the
// result pane shows. Prints one JSON line: the results (the pane's text,
// parsed), the requests refused and served, the WebSockets opened, the
// Content-Security-Policy violations, console errors, page errors, what
// the browser's storage holds that it should not (the token, UNSTORED),
// and timings. Exits 0 when every step ran (the Rust test judges what was
// seen), 1 otherwise (with `error`, and a screenshot at SCREENSHOT when
// given).
//
// CHROMIUM is the browser's path (default /usr/bin/chromium: Debian's
// chromium package; playwright-core downloads no browser).
import { chromium } from 'playwright-core';

const url = new URL(process.env.URL);
const token = process.env.TOKEN;
const queries = JSON.parse(process.env.QUERIES);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const wait = { timeout: Number(process.env.STEP_TIMEOUT_MS || 30000) };

const report = {
  results: [],
  refused: [],
  sockets: [],
  csp: [],
  consoleErrors: [],
  pageErrors: [],
  served: [],
  timings: {},
};
const started = Date.now();
const mark = (name) => {
  report.timings[name] = Date.now() - started;
};

// What the result pane shows: its lines as rendered, joined (CodeMirror
// draws spaces as no-break spaces and an empty line as a zero-width one).
// Runs in the page.
const paneText = () =>
  [...document.querySelectorAll('.result-window .CodeMirror-code pre.CodeMirror-line')]
    .map((line) => line.textContent.replace(/\u200b/g, '').replace(/\u00a0/g, ' '))
    .join('\n')
    .trim();

// The pane's text once it shows an answer other than `before`, whole.
async function newAnswer(page, before) {
  const deadline = Date.now() + wait.timeout;
  for (;;) {
    const text = await page.evaluate(paneText);
    if (text && text !== before) {
      try {
        JSON.parse(text);
        return text;
      } catch {
        // Not all drawn yet.
      }
    }
    if (Date.now() > deadline) {
      throw new Error(`the result pane showed no new answer in ${wait.timeout} ms: ${text}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// Replaces the text of the CodeMirror editor under `selector` by typing
// (select all, then the text as typed input; no bracket is auto-closed).
async function typeInto(page, selector, text) {
  await page.locator(`${selector} .CodeMirror-scroll`).click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
}

let browser;
let page;
let code = 0;
try {
  browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      // Nothing of Chromium's own outside the page: no lookups at all but
      // the server's address, no background requests.
      `--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ${url.hostname}`,
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--disable-gpu',
      '--no-first-run',
    ],
  });
  const context = await browser.newContext();
  // Every request of the page: the server's go through, any other is
  // refused and reported (data: URLs are not requests).
  await context.route('**/*', (route) => {
    const request = route.request();
    if (new URL(request.url()).origin === url.origin) {
      report.served.push(`${request.method()} ${new URL(request.url()).pathname}`);
      return route.continue();
    }
    report.refused.push(request.url());
    return route.abort('blockedbyclient');
  });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI} ${e.sample}`);
    });
  });
  page = await context.newPage();
  // WebSockets are not routed: they are checked as they open.
  page.on('websocket', (ws) => {
    report.sockets.push(ws.url());
    if (new URL(ws.url()).host !== url.host) report.refused.push(ws.url());
  });
  page.on('console', (message) => {
    const text = message.text();
    if (/Content.Security.Policy|CSP violation/i.test(text)) report.csp.push(text);
    else if (message.type() === 'error') report.consoleErrors.push(text);
  });
  page.on('pageerror', (err) => report.pageErrors.push(String(err)));

  await page.goto(url.href);
  await page.locator('.graphiql-query-editor .CodeMirror').waitFor(wait);
  mark('editor');

  await page.getByRole('button', { name: 'Headers', exact: true }).click();
  await typeInto(
    page,
    '.graphiql-editor-tool .graphiql-editor:not(.hidden)',
    JSON.stringify({ Authorization: `Bearer ${token}` })
  );

  let previous = await page.evaluate(paneText);
  for (const query of queries) {
    await typeInto(page, '.graphiql-query-editor', query);
    // GraphiQL parses the query 100 ms after the last edit (debounced) and
    // chooses HTTP or WebSocket by that parse: pause as a person would.
    await page.waitForTimeout(300);
    await page.locator('.graphiql-execute-button').click();
    previous = await newAnswer(page, previous);
    report.results.push(JSON.parse(previous));
    mark(`result ${report.results.length}`);
  }
  // Where the browser's storage holds the token or a string of UNSTORED (a
  // JSON array), each as `key: string` (none should be).
  const unstored = [token, ...JSON.parse(process.env.UNSTORED || '[]')];
  report.stored = await page.evaluate(
    (secrets) =>
      Object.keys(localStorage).flatMap((key) =>
        secrets
          .filter((secret) => (localStorage.getItem(key) || '').includes(secret))
          .map((secret) => `${key}: ${secret.slice(0, 12)}`)
      ),
    unstored
  );
  report.storageKeys = await page.evaluate(() => Object.keys(localStorage).sort());
} catch (err) {
  report.error = String(err && err.stack ? err.stack : err);
  if (page && process.env.SCREENSHOT) {
    await page.screenshot({ path: process.env.SCREENSHOT }).catch(() => {});
    report.screenshot = process.env.SCREENSHOT;
  }
  code = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
}
mark('done');
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exit(code);
