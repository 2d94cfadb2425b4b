import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/src/logger.js';
import { createMailTransport } from '../../server/src/mail/transport.js';
import { testConfig } from '../support/database.js';
import { startMailCatcher } from '../support/mail.js';

// A real SMTP server in-process, without STARTTLS (as a relay looks after an attacker stripped its offer).
const catcher = await startMailCatcher();
afterAll(() => catcher.close());

function transportFor(production: boolean) {
  const base = testConfig('postgresql://unused@127.0.0.1/unused', { MAIL_TRANSPORT: 'smtp', SMTP_URL: catcher.url });
  const config = { ...base, isProduction: production };
  return createMailTransport(config, createLogger(config));
}

describe('the SMTP transport', () => {
  it('delivers over plain SMTP outside production', async () => {
    const transport = transportFor(false);
    await transport.send({ to: 'plain@example.test', subject: 'plain', text: 'hello' });
    expect((await catcher.waitFor((m) => m.to.includes('plain@example.test'))).subject).toBe('plain');
    transport.close();
  });

  it('refuses, in production, to send over a connection that could not be upgraded to TLS', async () => {
    const transport = transportFor(true);
    await expect(transport.send({ to: 'clear@example.test', subject: 'clear', text: 'a reset link' })).rejects.toThrow(/STARTTLS|TLS/i);
    transport.close();
  });
});
