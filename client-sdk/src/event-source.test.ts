import { describe, expect, it } from 'vitest';
import type { FetchLike } from './client.js';
import { fetchEventSource, type KeelSourceEvent } from './event-source.js';

/** A fetch answering each request with the next scripted stream (chunks as given), recording the requests. */
function scripted(answers: { status?: number; type?: string; chunks: string[] }[]) {
  const requests: { url: string; headers: Record<string, string> }[] = [];
  const fetch: FetchLike = async (url, init) => {
    requests.push({ url, headers: init.headers as Record<string, string> });
    const answer = answers.shift();
    if (!answer) return new Promise<Response>(() => {});
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of answer.chunks) controller.enqueue(encoder.encode(chunk));
        controller.close();
      },
    });
    return new Response(body, { status: answer.status ?? 200, headers: { 'content-type': answer.type ?? 'text/event-stream' } });
  };
  return { fetch, requests };
}

function collect(source: { addEventListener(type: string, l: (e: KeelSourceEvent) => void): void }, types: string[]) {
  const events: KeelSourceEvent[] = [];
  for (const type of types) source.addEventListener(type, (e) => events.push(e));
  return events;
}

const until = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 1));
};

describe('the fetch-based EventSource', () => {
  it('parses events split across chunks and line endings, with ids, names, comments and multi-line data', async () => {
    const { fetch } = scripted([
      { chunks: ['event: connected\ndata: {}\n\n: a comment\n', 'data: one\r', '\ndata: two\r\nid: 7\r\n\r\nevent: ping\ndata:\n\n'] },
    ]);
    const Source = fetchEventSource({ fetch, headers: async () => ({}), retryMs: 1 });
    const source = new Source('http://api.test/trpc/x');
    const events = collect(source, ['connected', 'message', 'ping']);
    await until(() => events.length === 3);
    source.close();
    expect(events).toEqual([
      { type: 'connected', data: '{}', lastEventId: '' },
      { type: 'message', data: 'one\ntwo', lastEventId: '7' },
      { type: 'ping', data: '', lastEventId: '7' },
    ]);
  });

  it('reconnects a dropped stream with Last-Event-ID and the headers of that moment (a refreshed token)', async () => {
    const { fetch, requests } = scripted([{ chunks: ['id: a:1\ndata: "x"\n\n'] }, { chunks: ['id: a:2\ndata: "y"\n\n'] }]);
    let token = 'old';
    const Source = fetchEventSource({ fetch, headers: async () => ({ authorization: `Bearer ${token}` }), retryMs: 1 });
    const source = new Source('http://api.test/trpc/x');
    const events = collect(source, ['message']);
    await until(() => events.length === 1);
    token = 'new';
    await until(() => events.length === 2);
    source.close();
    expect(requests[0]?.headers).toMatchObject({ authorization: 'Bearer old', accept: 'text/event-stream' });
    expect(requests[0]?.headers['last-event-id']).toBeUndefined();
    expect(requests[1]?.headers).toMatchObject({ authorization: 'Bearer new', 'last-event-id': 'a:1' });
  });

  it('closes, with the status, on an answer that is not a 200 event stream', async () => {
    const { fetch } = scripted([{ status: 502, type: 'text/html', chunks: ['bad gateway'] }]);
    const Source = fetchEventSource({ fetch, headers: async () => ({}), retryMs: 1 });
    const source = new Source('http://api.test/trpc/x');
    const errors = collect(source, ['error']);
    await until(() => errors.length === 1);
    expect(errors[0]).toEqual({ type: 'error', status: 502 });
    expect(source.readyState).toBe(source.CLOSED);
  });
});
