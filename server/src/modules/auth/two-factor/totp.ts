/**
 * TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps, the parameters every authenticator app
 * reads) through `otpauth`, and the QR code of its key URI as an SVG data URL through `qrcode`.
 */
import { randomBytes } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';

export const TOTP_PERIOD_SECONDS = 30;
/** Steps either side of the current one a code may belong to (clock drift, a code typed late). */
export const TOTP_WINDOW = 1;
/** RFC 4226 asks for at least 128 bits; 160 bits is SHA-1's block-friendly length. */
const SECRET_BYTES = 20;

const totpOf = (secret: Buffer, label = 'account', issuer = '') =>
  new TOTP({
    issuer,
    label,
    secret: new Secret({ buffer: new Uint8Array(secret).buffer }),
    algorithm: 'SHA1',
    digits: 6,
    period: TOTP_PERIOD_SECONDS,
  });

export function newTotpSecret(): Buffer {
  return randomBytes(SECRET_BYTES);
}

/** The base32 secret (for typing it in) and the `otpauth://` URI, as authenticator apps read them. */
export function describeSecret(secret: Buffer, label: string, issuer: string): { secret: string; uri: string } {
  const totp = totpOf(secret, label, issuer);
  return { secret: totp.secret.base32, uri: totp.toString() };
}

export async function qrCodeSvgDataUrl(uri: string): Promise<string> {
  // Loaded at the first setup: qrcode and its dependencies hold ~10 MiB that sign-ins never need.
  const { default: QRCode } = await import('qrcode');
  const svg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  return `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`;
}

/** The step (30-second counter) `code` belongs to within the window around `at`, or undefined. */
export function matchingStep(secret: Buffer, code: string, at: Date): number | undefined {
  const totp = totpOf(secret);
  const timestamp = at.getTime();
  const delta = totp.validate({ token: code, timestamp, window: TOTP_WINDOW });
  return delta === null ? undefined : totp.counter({ timestamp }) + delta;
}
