import type { Db } from '../db/client.js';
import type { OutgoingMail } from './transport.js';

/**
 * Queues a mail in the caller's transaction: it is sent if and only if the change that caused it
 * commits. The worker (worker.ts) delivers it.
 */
export async function enqueueMail(db: Db, mail: OutgoingMail): Promise<void> {
  await db.mailOutbox.create({ data: { recipient: mail.to, subject: mail.subject, body: mail.text } });
}
