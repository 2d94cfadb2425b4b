import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/src/logger.js';
import { createMailTransport, smtpRequiresTls } from '../../server/src/mail/transport.js';
import { testConfig } from '../support/database.js';
import { startMailCatcher } from '../support/mail.js';

// A real SMTP server in-process, without STARTTLS (as a relay looks after an attacker stripped its offer).
const catcher = await startMailCatcher();
afterAll(() => catcher.close());

function transportFor(production: boolean, query = '') {
  const base = testConfig('postgresql://unused@127.0.0.1/unused', { MAIL_TRANSPORT: 'smtp', SMTP_URL: `${catcher.url}${query}` });
  const config = { ...base, isProduction: production };
  return createMailTransport(config, createLogger(config));
}

describe('the SMTP transport', () => {
  it('delivers over plain SMTP outside production, and in production to a relay on the same host', async () => {
    for (const production of [false, true]) {
      const transport = transportFor(production);
      const to = `plain-${production}@example.test`;
      await transport.send({ to, subject: 'plain', text: 'hello' });
      expect((await catcher.waitFor((m) => m.to.includes(to))).subject).toBe('plain');
      transport.close();
    }
  });

  it('in production requires STARTTLS from a relay across the network (not on this host, not smtps://)', () => {
    const production = (smtpUrl: string) => ({ isProduction: true, mail: { smtpUrl } });
    expect(smtpRequiresTls(production('smtp://user:pass@mail.example.com:587'))).toBe(true);
    expect(smtpRequiresTls(production('smtp://10.0.0.5:25'))).toBe(true);
    expect(smtpRequiresTls(production('smtp://127.0.0.1:25'))).toBe(false);
    expect(smtpRequiresTls(production('smtp://localhost:25'))).toBe(false);
    expect(smtpRequiresTls(production('smtp://[::1]:25'))).toBe(false);
    expect(smtpRequiresTls({ isProduction: false, mail: { smtpUrl: 'smtp://mail.example.com' } })).toBe(false);
  });

  it('refuses to send when TLS is required and the relay cannot upgrade (what an attacker stripping STARTTLS causes)', async () => {
    const transport = transportFor(true, '?requireTLS=true');
    await expect(transport.send({ to: 'clear@example.test', subject: 'clear', text: 'a reset link' })).rejects.toThrow(/STARTTLS|TLS/i);
    transport.close();
  });
});
