import { describe, expect, it, vi } from 'vitest';
import { enqueueMail } from '../../server/src/mail/outbox.js';
import type { MailTransport, OutgoingMail } from '../../server/src/mail/transport.js';
import { MailWorker } from '../../server/src/mail/worker.js';
import { useTestDatabase } from '../support/database.js';

const db = await useTestDatabase();
const prisma = db.database.prisma;
const logger = db.deps().logger;

/** A transport that records what it was asked to send and fails the first `failures` times. */
function recordingTransport(failures = 0) {
  const sent: OutgoingMail[] = [];
  let remaining = failures;
  const transport: MailTransport = {
    async send(mail) {
      if (remaining > 0) {
        remaining--;
        throw new Error('421 try again later');
      }
      sent.push(mail);
    },
    close() {},
  };
  return { sent, transport };
}

describe('mail outbox worker', () => {
  it('delivers queued mail and erases its body once sent', async () => {
    await enqueueMail(prisma, { to: 'a@example.test', subject: 'hello', text: 'link: https://x/?token=secret' });
    const { sent, transport } = recordingTransport();
    expect(await new MailWorker(prisma, transport, logger).drain()).toBe(1);
    expect(sent).toEqual([{ to: 'a@example.test', subject: 'hello', text: 'link: https://x/?token=secret' }]);
    const row = await prisma.mailOutbox.findFirstOrThrow({ where: { recipient: 'a@example.test' } });
    expect(row.sentAt).not.toBeNull();
    expect(row.body).toBe('');
  });

  it('retries a failed delivery later with backoff, and gives up after the last attempt', async () => {
    await enqueueMail(prisma, { to: 'retry@example.test', subject: 'retry', text: 'body' });
    const { transport } = recordingTransport(10);
    const worker = new MailWorker(prisma, transport, logger, { maxAttempts: 2 });
    expect(await worker.drain()).toBe(0);
    const afterFirst = await prisma.mailOutbox.findFirstOrThrow({ where: { recipient: 'retry@example.test' } });
    expect(afterFirst).toMatchObject({ attempts: 1, sentAt: null, failedAt: null, lastError: '421 try again later' });
    expect(afterFirst.nextAttemptAt.getTime()).toBeGreaterThan(Date.now());
    await prisma.mailOutbox.update({ where: { id: afterFirst.id }, data: { nextAttemptAt: new Date(0) } });
    await worker.drain();
    const afterSecond = await prisma.mailOutbox.findFirstOrThrow({ where: { id: afterFirst.id } });
    expect(afterSecond.attempts).toBe(2);
    expect(afterSecond.failedAt).not.toBeNull();
    expect(afterSecond.body).toBe('');
  });

  it('never sends a mail twice when two workers run at once', async () => {
    for (let i = 0; i < 10; i++) await enqueueMail(prisma, { to: `many${i}@example.test`, subject: 'many', text: `#${i}` });
    const one = recordingTransport();
    const two = recordingTransport();
    const [a, b] = await Promise.all([
      new MailWorker(prisma, one.transport, logger, { batchSize: 3 }).drain(),
      new MailWorker(prisma, two.transport, logger, { batchSize: 3 }).drain(),
    ]);
    expect(a + b).toBe(10);
    const recipients = [...one.sent, ...two.sent].map((m) => m.to).sort();
    expect(new Set(recipients).size).toBe(10);
  });

  it('delivers a mail queued after start on a kick, without waiting for the next poll', async () => {
    const { sent, transport } = recordingTransport();
    const delivered = new Promise<void>((resolve) => {
      const original = transport.send;
      transport.send = async (mail) => {
        await original(mail);
        if (mail.to === 'kicked@example.test') resolve();
      };
    });
    const worker = new MailWorker(prisma, transport, logger, { pollIntervalMs: 60_000 });
    worker.start();
    // The first pass finds an empty outbox; the next poll is a minute away, so only the kick can deliver.
    await worker.settled();
    expect(sent).toEqual([]);
    await enqueueMail(prisma, { to: 'kicked@example.test', subject: 'kick', text: 'now' });
    worker.kick();
    await delivered;
    await worker.stop();
    expect(sent.map((m) => m.to)).toEqual(['kicked@example.test']);
  });

  it('claims a batch for as long as sending all of it may take (the lease is per mail)', async () => {
    for (let i = 0; i < 3; i++) await enqueueMail(prisma, { to: `lease${i}@example.test`, subject: 'lease', text: 'x' });
    let leaseLeft = 0;
    const transport: MailTransport = {
      async send(mail) {
        if (mail.to !== 'lease0@example.test') return;
        const row = await prisma.mailOutbox.findFirstOrThrow({ where: { recipient: mail.to } });
        leaseLeft = (row.lockedUntil?.getTime() ?? 0) - Date.now();
      },
      close() {},
    };
    await new MailWorker(prisma, transport, logger, { batchSize: 3, leaseMs: 10_000 }).drain();
    // Three mails of up to 10 s each: the claim lasts ~30 s, not the 10 s that would let another worker resend the third.
    expect(leaseLeft).toBeGreaterThan(20_000);
  });

  it('sends nothing more once stopped, even with passes queued by kicks during a slow send', async () => {
    for (let i = 0; i < 3; i++) await enqueueMail(prisma, { to: `stop${i}@example.test`, subject: 'stop', text: 'x' });
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const sent: string[] = [];
    let sending = () => {};
    const firstSend = new Promise<void>((resolve) => {
      sending = resolve;
    });
    const transport: MailTransport = {
      async send(mail) {
        sending();
        await held;
        sent.push(mail.to);
      },
      close() {},
    };
    const worker = new MailWorker(prisma, transport, logger, { batchSize: 1, pollIntervalMs: 60_000 });
    const passes = vi.spyOn(worker, 'runOnce');
    worker.start();
    await firstSend;
    // Two more passes queue up behind the one that is sending (each would claim the next mail).
    for (const queued of [2, 3]) {
      worker.kick();
      await vi.waitFor(() => expect(passes).toHaveBeenCalledTimes(queued));
    }
    const stopped = worker.stop();
    release();
    await stopped;
    expect(sent).toHaveLength(1);
    expect(await prisma.mailOutbox.count({ where: { subject: 'stop', sentAt: null, attempts: 0 } })).toBe(2);

    // Started again, it delivers the rest.
    worker.start();
    await worker.settled();
    await vi.waitFor(() => expect(sent).toHaveLength(3));
    await worker.stop();
  });

  it('does not count a delivered mail as failed when marking it sent fails', async () => {
    await enqueueMail(prisma, { to: 'marked@example.test', subject: 'marked', text: 'x' });
    const transport: MailTransport = {
      // Delivered, then the row disappears (as if the database lost it): the update that marks it sent fails.
      async send(mail) {
        await prisma.mailOutbox.deleteMany({ where: { recipient: mail.to } });
      },
      close() {},
    };
    expect(await new MailWorker(prisma, transport, logger).drain()).toBe(0);
  });
});
