import nodemailer from 'nodemailer';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';

export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
}

export interface MailTransport {
  send(mail: OutgoingMail): Promise<void>;
  close(): void;
}

/**
 * `log` prints the mail (development: the link is right there in the terminal); production
 * refuses it. `smtp` speaks real SMTP through nodemailer, with bounded timeouts.
 */
export function createMailTransport(config: Config, logger: Logger): MailTransport {
  if (config.mail.transport === 'log') {
    return {
      async send(mail) {
        logger.info({ mailTo: mail.to, subject: mail.subject }, `mail (log transport, not sent):\n${mail.text}`);
      },
      close() {},
    };
  }
  const transporter = nodemailer.createTransport({
    url: config.mail.smtpUrl,
    // In production an smtp:// relay must upgrade with STARTTLS: a network attacker who strips the
    // server's offer must not get the login and the mailed links in clear (smtps:// is TLS anyway).
    requireTLS: config.isProduction,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
  });
  return {
    async send(mail) {
      await transporter.sendMail({ from: config.mail.from, to: mail.to, subject: mail.subject, text: mail.text });
    },
    close() {
      transporter.close();
    },
  };
}
