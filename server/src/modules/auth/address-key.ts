import { isIP } from 'node:net';

/**
 * The key a client address is limited by: an IPv4 address as it is (also IPv4-mapped IPv6), an
 * IPv6 address by its /64, since one host usually holds a whole /64 and could otherwise rotate
 * through it. Anything else (no address, or not an address) shares one key.
 */
export function addressKey(ip: string | undefined): string {
  const address = ip?.split('%')[0] ?? '';
  const family = isIP(address);
  if (family === 0) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (family === 4 || mapped) return mapped?.[1] ?? address;
  const [head = '', tail] = address.split('::');
  const groups = head === '' ? [] : head.split(':');
  if (tail !== undefined) {
    const tailGroups = tail === '' ? [] : tail.split(':');
    const tailWidth = tailGroups.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
    groups.push(...Array<string>(8 - groups.length - tailWidth).fill('0'), ...tailGroups);
  }
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
