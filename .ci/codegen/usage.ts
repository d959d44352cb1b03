// A small client written against the generated types of examples/, as a
// case system or a front end in TypeScript would be: `tsc --noEmit` checks
// it (it is never run). Generation already fails when an example selects
// what the schema no longer has; this fails when what it has changes
// under a caller: a field that turns nullable or changes type, an enum
// value that goes, an input that gains a required field.
import type {
  BoardStatisticsQuery,
  BoardStatisticsQueryVariables,
  CaseEventType,
  CaseStatus,
  FeedFollowQuery,
  FeedFollowQueryVariables,
  LiveCaseEventsSubscription,
  RaiseCaseMutation,
  RaiseCaseMutationVariables,
  RotherhamMilestonesQuery,
  StatusPollQuery,
  StatusPollQueryVariables,
} from './generated/graphql';

/** POSTs one operation with a bearer token; the answer's `data`. */
async function request<Data, Variables>(
  url: string,
  token: string,
  query: string,
  variables: Variables,
): Promise<Data> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: Data; errors?: { message: string }[] };
  if (body.errors !== undefined || body.data === undefined) {
    throw new Error(body.errors?.map((e) => e.message).join('; ') ?? `HTTP ${response.status}`);
  }
  return body.data;
}

type PolledCase = StatusPollQuery['cases']['nodes'][number];

const closed: readonly CaseStatus[] = ['RESOLVED', 'WITHDRAWN'];

/** A case system's copy of one case's status. */
interface Status {
  stage: string;
  open: boolean;
  dueOn: string | null;
  overdue: boolean;
  version: number;
}

function status(c: PolledCase): Status {
  return {
    stage: c.stage,
    open: !closed.includes(c.status),
    dueOn: c.dueOn,
    overdue: c.overdue,
    version: c.version,
  };
}

/** The status poll, page after page; the variables of the next poll. */
async function poll(
  url: string,
  token: string,
  query: string,
  since: StatusPollQueryVariables,
  store: Map<string, Status>,
): Promise<StatusPollQueryVariables> {
  let variables: StatusPollQueryVariables = { ...since, after: null };
  let latest = since.updatedAfter ?? null;
  for (;;) {
    const page = await request<StatusPollQuery, StatusPollQueryVariables>(url, token, query, variables);
    for (const c of page.cases.nodes) {
      store.set(c.id, status(c));
      latest = c.updatedAt;
    }
    if (!page.cases.pageInfo.hasNextPage) {
      return { updatedAfter: latest };
    }
    variables = { ...variables, after: page.cases.pageInfo.endCursor };
  }
}

/** The feed, from the stored cursor; the cursor to store. */
async function follow(
  url: string,
  token: string,
  query: string,
  cursor: string | null,
  onEvent: (type: CaseEventType, caseId: string, version: number) => void,
): Promise<string | null> {
  let variables: FeedFollowQueryVariables = { after: cursor };
  for (;;) {
    const page = await request<FeedFollowQuery, FeedFollowQueryVariables>(url, token, query, variables);
    for (const edge of page.caseEvents.edges) {
      onEvent(edge.node.type, edge.node.caseId, edge.node.version);
    }
    const next = page.caseEvents.pageInfo.endCursor ?? variables.after ?? null;
    if (!page.caseEvents.pageInfo.hasNextPage) {
      return next;
    }
    variables = { after: next };
  }
}

/** A front end's "raise" form, sent. */
async function raise(
  url: string,
  token: string,
  query: string,
  receivingAgencyId: string,
  childReference: string,
  summary: string,
): Promise<{ id: string; version: number; canEscalate: boolean }> {
  const input: RaiseCaseMutationVariables['input'] = {
    receivingAgencyId,
    childReference,
    category: 'referral-response',
    summary,
  };
  const data = await request<RaiseCaseMutation, RaiseCaseMutationVariables>(url, token, query, { input });
  const c = data.raiseCase.case;
  return { id: c.id, version: c.version, canEscalate: c.viewerCan.escalate };
}

/** What is owed next on a Rotherham challenge, in a sentence. */
function owedNext(data: RotherhamMilestonesQuery): string {
  const next = data.case.nextMilestone;
  if (next === null) {
    return 'nothing owed';
  }
  const who = next.owedBy.roles.map((r) => r.toLowerCase()).join(' or ');
  return `${next.name}: the ${next.owedBy.side.toLowerCase()} side's ${who}, by ${next.dueOn ?? 'a date set once the step before is done'}`;
}

/** One line of a board report. */
function boardLine(variables: BoardStatisticsQueryVariables, data: BoardStatisticsQuery): string {
  const s = data.boardStatistics;
  const rate = s.casesRaised === 0 ? 0 : s.casesResolved / s.casesRaised;
  const median: number | null = s.timeToResolution.medianWorkingDays;
  return `${variables.from} to ${variables.to}: ${s.casesRaised} raised, ${(rate * 100).toFixed(0)}% resolved, median ${median ?? '-'} working days, ${s.overdueNow} overdue now`;
}

/** A live event: the cursor to resume from, and the case to refresh. */
function live(event: LiveCaseEventsSubscription): { cursor: string; refresh: string } {
  return { cursor: event.caseEvents.cursor, refresh: event.caseEvents.node.caseId };
}

export { boardLine, follow, live, owedNext, poll, raise };
