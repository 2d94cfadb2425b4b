import { afterAll } from 'vitest';
import type { AppDeps } from '../../server/src/deps.js';
import { type App, type BuildAppOptions, buildApp } from '../../server/src/http/app.js';

export interface TestServer {
  app: App;
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  close(): Promise<void>;
}

/** The real HTTP host on a free loopback port, closed after the file's tests. */
export async function startTestServer(deps: AppDeps, options: BuildAppOptions = {}): Promise<TestServer> {
  const app = await buildApp(deps, options);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await app.close();
  };
  afterAll(close);
  return { app, url, close };
}
