/** The words of the account mails: subject and plain text, nothing else (the outbox sends them). */

export interface MailBody {
  subject: string;
  text: string;
}

/** The link a mail carries to the web app, with its single-use token. */
export const accountLink = (appUrl: string, path: string, token: string) => `${appUrl}${path}?token=${encodeURIComponent(token)}`;

/** The first verification mail, sent with the registration. */
export const welcomeMail = (link: string): MailBody => ({
  subject: 'Confirm your email address',
  text: `Welcome to Keel.\n\nConfirm your email address by opening this link:\n${link}\n`,
});

/** A verification mail asked for again. */
export const verificationMail = (link: string): MailBody => ({
  subject: 'Confirm your email address',
  text: `Confirm your email address by opening this link:\n${link}\n`,
});

export const passwordResetMail = (link: string, minutes: number): MailBody => ({
  subject: 'Reset your password',
  text: `Someone asked to reset the password of your Keel account.\n\nTo choose a new password, open this link within ${minutes} minutes:\n${link}\n\nIf it was not you, ignore this mail: your password stays as it is.\n`,
});

export const passwordChangedMail = (appUrl: string, how: 'changed' | 'reset'): MailBody => ({
  subject: 'Your password was changed',
  text: `The password of your Keel account was ${how === 'reset' ? 'reset with a mailed link' : 'changed'}, and every other session was signed out.\n\nIf it was not you, reset your password at once from the sign-in page:\n${appUrl}\n`,
});
