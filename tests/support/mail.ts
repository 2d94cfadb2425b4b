/**
 * A real SMTP server in the test process: Keel's smtp transport talks the SMTP protocol to it, and
 * tests read what arrived. No mocks between Keel and the wire.
 */
import { type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterAll } from 'vitest';

export interface ReceivedMail {
  to: string;
  subject: string;
  text: string;
}

export interface MailCatcher {
  url: string;
  received: ReceivedMail[];
  /** Resolves with the first mail (already received or arriving) that matches. */
  waitFor(match: (mail: ReceivedMail) => boolean, timeoutMs?: number): Promise<ReceivedMail>;
  close(): Promise<void>;
}

export async function startMailCatcher(): Promise<MailCatcher> {
  const received: ReceivedMail[] = [];
  const waiters = new Set<() => void>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, _session, callback) {
      simpleParser(stream)
        .then((parsed: ParsedMail) => {
          const to = Array.isArray(parsed.to) ? parsed.to.map((a) => a.text).join(', ') : (parsed.to?.text ?? '');
          received.push({ to, subject: parsed.subject ?? '', text: parsed.text ?? '' });
          for (const wake of waiters) wake();
          callback();
        })
        .catch(callback);
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  afterAll(close);
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    waitFor(match, timeoutMs = 5_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const mail = received.find(match);
          if (!mail) return false;
          waiters.delete(wake);
          clearTimeout(timer);
          resolve(mail);
          return true;
        };
        const wake = () => void check();
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(
            new Error(
              `no matching mail within ${timeoutMs} ms (received: ${received.map((m) => `${m.to}: ${m.subject}`).join('; ') || 'none'})`,
            ),
          );
        }, timeoutMs);
        waiters.add(wake);
        check();
      });
    },
    close,
  };
}

/** The single-use token in a mailed link. */
export function tokenFromMail(mail: ReceivedMail): string {
  const match = /[?&]token=([A-Za-z0-9_-]{43})/.exec(mail.text);
  if (!match?.[1]) throw new Error(`no token link in mail: ${mail.text}`);
  return match[1];
}
