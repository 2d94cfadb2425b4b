/**
 * The development inbox (GET /dev/inbox): the mails the log transport sent, links clickable, in
 * development only. A real server, the real mail worker, the real log transport.
 */
import { describe, expect, it } from 'vitest';
import { DevInbox, devInboxEnabled, INBOX_SIZE, linkify } from '../../server/src/mail/dev-inbox.js';
import { productionEnv } from '../http/fixtures.js';
import { testConfig, useTestDatabase } from '../support/database.js';
import { startTestServer } from '../support/http.js';

const db = await useTestDatabase();

describe('the development inbox', () => {
  it('lists a mail sent in development, its link an <a href>', async () => {
    const deps = db.deps({ config: { NODE_ENV: 'development', SEED_DEMO_DATA: 'false' } });
    deps.mailer.start();
    const server = await startTestServer(deps);
    try {
      const register = await fetch(`${server.url}/api/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'inbox@example.test', password: 'a sturdy inbox passphrase', name: 'Ada' }),
      });
      expect(register.status).toBeLessThan(300);
      // The worker sends on its own schedule: wait until the inbox has it (the mail worker's pass settled).
      await deps.mailer.settled();
      await deps.mailer.drain();
      const page = await fetch(`${server.url}/dev/inbox`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await page.text();
      expect(html).toContain('inbox@example.test');
      const link = /<a href="(http:\/\/localhost:5173\/[^"]+)">/.exec(html)?.[1];
      expect(link).toBeDefined();
      expect(link).toMatch(/token=/);
    } finally {
      await deps.mailer.stop();
    }
  });

  it('does not exist in test or production, nor with SMTP', async () => {
    const inTest = await startTestServer(db.deps());
    expect((await fetch(`${inTest.url}/dev/inbox`)).status).toBe(404);
    const inProduction = await startTestServer(db.deps({ config: productionEnv() }));
    expect((await fetch(`${inProduction.url}/dev/inbox`)).status).toBe(404);
    expect(devInboxEnabled(testConfig(db.url, { NODE_ENV: 'development', MAIL_TRANSPORT: 'smtp', SMTP_URL: 'smtp://127.0.0.1:9' }))).toBe(
      false,
    );
    expect(devInboxEnabled({ env: 'development', isProduction: true, mail: { transport: 'log' } })).toBe(false);
  });

  it('keeps the last mails, newest first, and escapes everything but the links it makes', () => {
    const inbox = new DevInbox();
    for (let i = 0; i < INBOX_SIZE + 5; i++) inbox.add({ to: `u${i}@example.test`, subject: `mail ${i}`, text: 'hi' });
    expect(inbox.list()).toHaveLength(INBOX_SIZE);
    expect(inbox.list()[0]?.subject).toBe(`mail ${INBOX_SIZE + 4}`);
    expect(linkify('go <here> https://x.test/a?b=1&c=2 now')).toBe(
      'go &lt;here&gt; <a href="https://x.test/a?b=1&amp;c=2">https://x.test/a?b=1&amp;c=2</a> now',
    );
  });
});
