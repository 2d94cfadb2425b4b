/**
 * The development inbox: GET /dev/inbox lists the mails the log transport "sent" (newest first),
 * their links clickable, so a password reset or an email verification is one click in the browser
 * instead of a copy from the terminal. Kept in memory by the server process (a restart empties
 * it), the last INBOX_SIZE mails. Only in development with MAIL_TRANSPORT=log: never in production
 * or test, and never with a real SMTP relay.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import type { OutgoingMail } from './transport.js';

export const DEV_INBOX_PATH = '/dev/inbox';
export const INBOX_SIZE = 50;

export interface InboxMail extends OutgoingMail {
  receivedAt: Date;
}

export function devInboxEnabled(config: Pick<Config, 'env' | 'isProduction'> & { mail: Pick<Config['mail'], 'transport'> }): boolean {
  return config.env === 'development' && !config.isProduction && config.mail.transport === 'log';
}

export class DevInbox {
  readonly #mails: InboxMail[] = [];

  constructor(private readonly now: () => Date = () => new Date()) {}

  add(mail: OutgoingMail): void {
    this.#mails.unshift({ ...mail, receivedAt: this.now() });
    this.#mails.length = Math.min(this.#mails.length, INBOX_SIZE);
  }

  /** Newest first. */
  list(): readonly InboxMail[] {
    return this.#mails;
  }
}

const escapeHtml = (text: string) =>
  text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#39;');

/** The body as HTML: escaped, with every http(s) URL a link. */
export function linkify(text: string): string {
  return text
    .split(/(https?:\/\/[^\s<>"']+)/)
    .map((part, i) => (i % 2 === 1 ? `<a href="${escapeHtml(part)}">${escapeHtml(part)}</a>` : escapeHtml(part)))
    .join('');
}

export function renderInbox(mails: readonly InboxMail[]): string {
  const items = mails
    .map(
      (mail) => `    <article>
      <h2>${escapeHtml(mail.subject)}</h2>
      <p>To <b>${escapeHtml(mail.to)}</b>, ${escapeHtml(mail.receivedAt.toISOString())}</p>
      <pre>${linkify(mail.text)}</pre>
    </article>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>Keel development inbox (${mails.length})</title>
  </head>
  <body>
    <h1>Development inbox</h1>
    <p>The mails this server sent since it started (newest first, the last ${INBOX_SIZE}). Reload to see new ones. Development only.</p>
${items || '    <p>No mail yet.</p>'}
  </body>
</html>
`;
}

export function registerDevInbox(app: FastifyInstance, inbox: DevInbox): void {
  app.get(DEV_INBOX_PATH, async (_req, reply) =>
    reply.header('cache-control', 'no-store').type('text/html; charset=utf-8').send(renderInbox(inbox.list())),
  );
}
