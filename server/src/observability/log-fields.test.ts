import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { setTraceLogFields } from './log-fields.js';

function logged() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const config = parseConfig({ NODE_ENV: 'test', LOG_LEVEL: 'info', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' });
  return { lines, logger: createLogger(config, stream) };
}

afterEach(() => setTraceLogFields(undefined));

describe('trace ids on log lines', () => {
  it('adds the active span ids to every line, fields of the line kept', () => {
    const { lines, logger } = logged();
    setTraceLogFields(() => ({ trace_id: 'a'.repeat(32), span_id: 'b'.repeat(16) }));
    logger.info({ procedure: 'projects.list' }, 'inside');
    logger.warn({ err: new Error('boom') }, 'inside, with an error');
    expect(lines[0]).toMatchObject({ msg: 'inside', procedure: 'projects.list', trace_id: 'a'.repeat(32), span_id: 'b'.repeat(16) });
    expect(lines[1]).toMatchObject({ msg: 'inside, with an error', trace_id: 'a'.repeat(32), err: { message: 'boom' } });
  });

  it('writes lines outside any span (the mail worker, start-up) without ids, and never shares an object between lines', () => {
    const { lines, logger } = logged();
    setTraceLogFields(() => undefined);
    logger.warn({ err: new Error('smtp down'), mailId: 'm1' }, 'mail delivery failed');
    logger.info('next');
    expect(lines[0]).toMatchObject({ msg: 'mail delivery failed', mailId: 'm1', err: { message: 'smtp down' } });
    expect(lines[0]).not.toHaveProperty('trace_id');
    expect(lines[1]).not.toHaveProperty('mailId');
  });
});
