/**
 * tRPC over HTTP for benchmark set-up (seeding users, signing in): the superjson envelope, and an
 * error that says which call failed and how.
 */
import superjson from 'superjson';

/** The request body of a tRPC call with `input`, as a string (autocannon sends it as is). */
export const trpcBody = (input: unknown): string => JSON.stringify(superjson.serialize(input));

/** The superjson-decoded `data` of a successful answer body, or undefined for an error answer. */
export function trpcData<T>(body: string): T | undefined {
  try {
    const parsed = JSON.parse(body) as { result?: { data: Parameters<typeof superjson.deserialize>[0] } };
    return parsed.result ? superjson.deserialize<T>(parsed.result.data) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * POSTs a mutation; resolves with its data, rejects with the server's error message. A 429 (the
 * server shedding password work, e.g. right after a login flood) is retried after its Retry-After,
 * as a polite client does, a few times.
 */
export async function trpcMutation<T>(baseUrl: string, path: string, input: unknown, headers: Record<string, string> = {}): Promise<T> {
  let response: Response;
  for (let attempt = 1; ; attempt += 1) {
    response = await fetch(`${baseUrl}/trpc/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: trpcBody(input),
      signal: AbortSignal.timeout(30_000),
    });
    const retryAfter = Number(response.headers.get('retry-after'));
    if (response.status !== 429 || attempt === 5 || !(retryAfter > 0)) break;
    await response.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, Math.min(retryAfter, 10) * 1000));
  }
  const text = await response.text();
  const data = trpcData<T>(text);
  if (!response.ok || data === undefined) throw new Error(`${path} answered ${response.status}: ${text.slice(0, 300)}`);
  return data;
}
