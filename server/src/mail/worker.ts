import type { PrismaClient } from '../db/client.js';
import type { Logger } from '../logger.js';
import { hooks } from '../observability/hooks.js';
import type { MailTransport } from './transport.js';

export interface MailWorkerOptions {
  pollIntervalMs?: number;
  batchSize?: number;
  maxAttempts?: number;
  /**
   * How long a claimed mail stays invisible to other workers, per mail of the batch (they are
   * sent one after another); a crashed worker's rows come back after it.
   */
  leaseMs?: number;
}

interface ClaimedMail {
  id: string;
  recipient: string;
  subject: string;
  body: string;
  attempts: number;
}

/**
 * Delivers the outbox. Rows are claimed with a lease under `FOR UPDATE SKIP LOCKED`, so several
 * instances share the work without sending a mail twice; a failure is retried with exponential
 * backoff and given up after `maxAttempts`. A sent mail's body is erased (it may hold a link).
 */
export class MailWorker {
  private timer: NodeJS.Timeout | undefined;
  /** The last queued pass; passes run one after another, never two at once. */
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = true;
  /** Set by stop(): passes queued before it send nothing more. */
  private closing = false;
  private readonly pollIntervalMs: number;
  private readonly batchSize: number;
  private readonly maxAttempts: number;
  private readonly leaseMs: number;

  constructor(
    private readonly db: PrismaClient,
    private readonly transport: MailTransport,
    private readonly log: Logger,
    options: MailWorkerOptions = {},
  ) {
    this.pollIntervalMs = options.pollIntervalMs ?? 2_000;
    // A claim lasts batchSize x leaseMs (2.5 min): long enough for five sends at the transport's
    // worst case (~40 s of timeouts each), short enough that a crashed worker's mails (password
    // resets among them) come back soon.
    this.batchSize = options.batchSize ?? 5;
    this.maxAttempts = options.maxAttempts ?? 8;
    this.leaseMs = options.leaseMs ?? 30_000;
  }

  /** Starts polling; the first pass is queued at once (see `settled`). */
  start(): void {
    this.stopped = false;
    this.closing = false;
    this.tick();
  }

  /** Look at the outbox now (after a mail was queued) instead of at the next poll. */
  kick(): void {
    if (!this.stopped) this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.closing = true;
    clearTimeout(this.timer);
    await this.queue;
    this.transport.close();
  }

  /** Resolves once every pass queued so far has finished (the next poll or kick is not waited for). */
  async settled(): Promise<void> {
    await this.queue;
  }

  /** Delivers everything due now; resolves with how many mails were sent. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const sent = await this.runOnce();
      total += sent;
      if (sent === 0) return total;
    }
  }

  /**
   * One pass: claim a batch, deliver it. A call made while a pass runs queues a new pass after it
   * (joining the running one could miss a mail queued after that pass claimed its batch).
   */
  runOnce(): Promise<number> {
    const pass = this.queue.then(() => this.deliverBatch());
    this.queue = pass.catch(() => undefined);
    return pass;
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), delayMs);
    this.timer.unref();
  }

  /** Runs passes now, then polls again after the interval. */
  private tick(): void {
    // A full batch suggests more is waiting: go on until a pass sends less (a backlog is not
    // limited to one batch per poll interval).
    const passes = async () => {
      while (!this.closing && (await this.runOnce()) === this.batchSize) {}
    };
    passes()
      .catch((error: unknown) => this.log.error({ err: error }, 'mail worker: pass failed'))
      .finally(() => {
        if (!this.stopped) this.schedule(this.pollIntervalMs);
      });
  }

  private async deliverBatch(): Promise<number> {
    if (this.closing) return 0;
    const leaseMs = this.leaseMs * this.batchSize;
    const claimed = await this.db.$queryRaw<ClaimedMail[]>`
      UPDATE mail_outbox SET locked_until = now() + (${leaseMs}::int * interval '1 millisecond'), attempts = attempts + 1
      WHERE id IN (
        SELECT id FROM mail_outbox
        WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
          AND (locked_until IS NULL OR locked_until < now())
        ORDER BY created_at
        LIMIT ${this.batchSize}
        FOR UPDATE SKIP LOCKED
      )
      RETURNING id, recipient, subject, body, attempts`;
    let sent = 0;
    for (const mail of claimed) {
      try {
        const send = () => this.transport.send({ to: mail.recipient, subject: mail.subject, text: mail.body });
        await (hooks.span === undefined ? send() : hooks.span('mail.send', { 'mail.attempt': mail.attempts }, send));
      } catch (error) {
        await this.recordFailure(mail, error);
        continue;
      }
      try {
        await this.db.mailOutbox.update({
          where: { id: mail.id },
          data: { sentAt: new Date(), body: '', lockedUntil: null, lastError: null },
        });
        sent++;
      } catch (error) {
        // Delivered: not a failed delivery to retry now. Unmarked, it may go out again once its lease ends.
        this.log.error({ err: error, mailId: mail.id }, 'mail sent, but marking it sent failed');
      }
    }
    return sent;
  }

  private async recordFailure(mail: ClaimedMail, error: unknown): Promise<void> {
    const message = (error instanceof Error ? error.message : String(error)).slice(0, 1000);
    const giveUp = mail.attempts >= this.maxAttempts;
    const backoffMs = Math.min(2 ** mail.attempts * 5_000, 60 * 60_000);
    await this.db.mailOutbox.update({
      where: { id: mail.id },
      data: giveUp
        ? { failedAt: new Date(), lockedUntil: null, lastError: message, body: '' }
        : { nextAttemptAt: new Date(Date.now() + backoffMs), lockedUntil: null, lastError: message },
    });
    this.log.warn({ mailId: mail.id, attempts: mail.attempts, giveUp, error: message }, 'mail delivery failed');
  }
}
