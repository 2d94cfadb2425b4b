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
/**
 * Whether the SMTP connection must be upgraded with STARTTLS before the login and the mail go
 * out: in production, for a relay across a network (an attacker who strips the server's STARTTLS
 * offer must not get them in clear). A relay on the same host (a sidecar Postfix) is exempt;
 * smtps:// is TLS from the start; `?requireTLS=false` in SMTP_URL overrides this for an internal
 * relay without TLS.
 */
export function smtpRequiresTls(config: Pick<Config, 'isProduction'> & { mail: Pick<Config['mail'], 'smtpUrl'> }): boolean {
  if (!config.isProduction) return false;
  try {
    const host = new URL(config.mail.smtpUrl ?? '').hostname.replace(/^\[|\]$/g, '');
    return !(host === 'localhost' || host === '::1' || /^127\./.test(host));
  } catch {
    return true;
  }
}

export function createMailTransport(config: Config, logger: Logger, inbox?: { add(mail: OutgoingMail): void }): MailTransport {
  if (config.mail.transport === 'log') {
    return {
      async send(mail) {
        logger.info({ mailTo: mail.to, subject: mail.subject }, `mail (log transport, not sent):\n${mail.text}`);
        inbox?.add(mail);
      },
      close() {},
    };
  }
  const transporter = nodemailer.createTransport({
    url: config.mail.smtpUrl,
    requireTLS: smtpRequiresTls(config),
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
