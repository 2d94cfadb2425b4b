import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT, parseConfig } from '../../config.js';
import {
  HAPROXY_TEMPLATE,
  PGBOUNCER_TEMPLATE,
  readTemplate,
  renderHaproxyConfig,
  renderPgbouncerConfig,
  TemplateError,
} from './configs.js';

const haproxyOptions = {
  port: 18080,
  statsSocket: '/tmp/keel-cluster/haproxy.sock',
  servers: [
    { name: 'keel1', port: 4001 },
    { name: 'keel2', port: 4002 },
  ],
};

describe('the cluster configurations made from deploy/', () => {
  it('runs deploy/haproxy.cfg on the loopback in the foreground, keeping every check and timeout', () => {
    const template = readTemplate(HAPROXY_TEMPLATE);
    const config = renderHaproxyConfig(template, haproxyOptions);
    expect(config).toContain('    bind 127.0.0.1:18080');
    expect(config.match(/^\s+server .*$/gm)).toEqual(['    server keel1 127.0.0.1:4001', '    server keel2 127.0.0.1:4002']);
    expect(config).toContain('    stats socket /tmp/keel-cluster/haproxy.sock mode 600 level admin');
    expect(config).not.toMatch(/^\s+(daemon|chroot|user|group)\b/m);
    expect(config).not.toContain('/dev/log');
    for (const kept of [
      'http-check send meth GET uri /readyz',
      'timeout http-request 10s',
      'timeout server 35s',
      'default-server check inter 1s',
      'http-request del-header X-Forwarded-For',
      'option forwardfor',
      'retries 2',
    ]) {
      expect(config).toContain(kept);
    }
  });

  it('runs deploy/pgbouncer.ini in transaction mode against the given server, trusting loopback clients', () => {
    const config = renderPgbouncerConfig(readTemplate(PGBOUNCER_TEMPLATE), {
      port: 16432,
      serverUrl: 'postgresql://postgres:s3cr%27et@127.0.0.1:5433/keel_test_1',
      authFile: '/tmp/keel-cluster/users.txt',
    });
    const keel = config.split('\n').find((line) => line.startsWith('keel ='));
    expect(keel).toBe(
      "keel = host='127.0.0.1' port='5433' dbname='keel_test_1' user='postgres' password='s3cr\\'et' connect_query='SET statement_timeout = 10000'",
    );
    expect(config).toMatch(/^pool_mode = transaction$/m);
    expect(config).toMatch(/^listen_addr = 127\.0\.0\.1$/m);
    expect(config).toMatch(/^listen_port = 16432$/m);
    expect(config).toMatch(/^auth_type = trust$/m);
    expect(config).toMatch(/^auth_file = \/tmp\/keel-cluster\/users\.txt$/m);
    expect(config).toMatch(/^ignore_startup_parameters = statement_timeout/m);
  });

  it('fails loudly when a template loses a line the cluster replaces', () => {
    const template = readTemplate(HAPROXY_TEMPLATE);
    expect(() => renderHaproxyConfig(template.replace(/^\s+bind .*$/m, ''), haproxyOptions)).toThrow(TemplateError);
    expect(() => renderHaproxyConfig(template.replace(/^\s+server .*$/gm, ''), haproxyOptions)).toThrow(TemplateError);
    const ini = readTemplate(PGBOUNCER_TEMPLATE).replace(/^keel = .*$/m, '');
    expect(() => renderPgbouncerConfig(ini, { port: 1, serverUrl: 'postgresql://x@h/d', authFile: '/f' })).toThrow(TemplateError);
  });
});

describe('deploy/ files agree with each other and with Keel', () => {
  const service = readFileSync(join(PROJECT_ROOT, 'deploy/keel.service'), 'utf8');
  const setting = (name: string) => Number(new RegExp(`^Environment=${name}=(\\d+)$`, 'm').exec(service)?.[1]);
  const seconds = (value: string | undefined) => (value?.endsWith('ms') ? Number.parseFloat(value) / 1000 : Number.parseFloat(value ?? ''));

  it('runs the built server with the node flags of pnpm start', () => {
    const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'server/package.json'), 'utf8')) as { scripts: { start: string } };
    const flags = pkg.scripts.start.split(/\s+/).filter((arg) => arg.startsWith('--'));
    expect(/^ExecStart=\/usr\/bin\/node (.*) server\/dist\/main\.js$/m.exec(service)?.[1]?.split(' ')).toEqual(flags);
  });

  it("drains longer than HAProxy takes to see /readyz fail, and keeps idle connections longer than HAProxy's pool", () => {
    const haproxy = readTemplate(HAPROXY_TEMPLATE);
    const inter = seconds(/default-server .*\binter (\S+)/.exec(haproxy)?.[1]);
    const fall = Number(/default-server .*\bfall (\d+)/.exec(haproxy)?.[1]);
    const check = seconds(/timeout check (\S+)/.exec(haproxy)?.[1]);
    expect(setting('SHUTDOWN_DRAIN_MS') / 1000).toBeGreaterThan(inter * fall + check);
    const purge = seconds(/pool-purge-delay (\S+)/.exec(haproxy)?.[1]);
    expect(setting('KEEP_ALIVE_TIMEOUT_MS') / 1000).toBeGreaterThan(2 * purge);
    // Keel answers its own request timeout before HAProxy gives up on the server.
    expect(seconds(/timeout server (\S+)/.exec(haproxy)?.[1])).toBeGreaterThan(parseConfig({}).http.requestTimeoutMs / 1000);
  });
});
