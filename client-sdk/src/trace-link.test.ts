import { afterEach, describe, expect, it } from 'vitest';
import { createKeelClient } from './client.js';

const REGISTRY = Symbol.for('opentelemetry.js.api.1');
const globals = globalThis as Record<symbol, unknown>;

/** What an app's OpenTelemetry API registers: a context manager and a propagator (here: fixed values). */
function registerOtel(active: { traceparent?: string }) {
  globals[REGISTRY] = {
    version: '1.10.0',
    context: { active: () => active },
    propagation: {
      inject(
        context: { traceparent?: string },
        carrier: Record<string, string>,
        setter: { set(c: Record<string, string>, k: string, v: string): void },
      ) {
        if (context.traceparent) setter.set(carrier, 'traceparent', context.traceparent);
      },
    },
  };
}

function client() {
  const seen: Headers[] = [];
  const keel = createKeelClient({
    url: 'http://keel.test',
    fetch: async (_url, init) => {
      seen.push(new Headers(init?.headers as Record<string, string>));
      return new Response(JSON.stringify([{ result: { data: { json: { status: 'ok' } } } }]), {
        headers: { 'content-type': 'application/json' },
      });
    },
  });
  return { keel, seen };
}

afterEach(() => {
  delete globals[REGISTRY];
});

describe('trace context from the SDK', () => {
  it("sends the caller's traceparent when its app has an active OpenTelemetry span", async () => {
    const traceparent = `00-${'a1'.repeat(16)}-${'b2'.repeat(8)}-01`;
    registerOtel({ traceparent });
    const { keel, seen } = client();
    await keel.system.health.query();
    expect(seen[0]?.get('traceparent')).toBe(traceparent);
  });

  it('sends none without OpenTelemetry, or without an active span', async () => {
    const bare = client();
    await bare.keel.system.health.query();
    expect(bare.seen[0]?.has('traceparent')).toBe(false);
    registerOtel({});
    const idle = client();
    await idle.keel.system.health.query();
    expect(idle.seen[0]?.has('traceparent')).toBe(false);
  });
});
