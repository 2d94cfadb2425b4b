import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseConfig } from './config.js';
import { createLogger } from './logger.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: createLogger(parseConfig({ NODE_ENV: 'test', LOG_LEVEL: 'info' }), stream) };
}

describe('logger', () => {
  it('redacts authorization headers, cookies and fields named like secrets', () => {
    const { lines, logger } = capture();
    logger.info({
      req: { headers: { authorization: 'Bearer abc.def', cookie: 'sid=1', accept: 'json' } },
      password: 'hunter22',
      input: { refreshToken: 'r1', email: 'a@b.c', nested: { secret: 's' } },
    });
    const line = JSON.stringify(lines[0]);
    for (const secret of ['abc.def', 'sid=1', 'hunter22', 'r1', '"s"']) expect(line).not.toContain(secret);
    expect(line).toContain('a@b.c');
    expect(line).toContain('json');
  });

  it('writes JSON lines with an ISO time and a level label', () => {
    const { lines, logger } = capture();
    logger.warn('hello');
    expect(lines[0]).toMatchObject({ level: 'warn', msg: 'hello', service: 'keel' });
    expect(String(lines[0]?.time)).toMatch(/^\d{4}-\d{2}-\d{2}T/);
  });
});
