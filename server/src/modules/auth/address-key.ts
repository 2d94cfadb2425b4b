import ipaddr from 'ipaddr.js';

/**
 * The key a client address is limited by: an IPv4 address as it is (also IPv4-mapped IPv6), an
 * IPv6 address by its /64, since one host usually holds a whole /64 and could otherwise rotate
 * through it. Anything else (no address, or not an address) shares one key. Parsed by ipaddr.js,
 * the parser behind Fastify's `trustProxy` (proxy-addr), so both read an address alike.
 */
export function addressKey(ip: string | undefined): string {
  if (ip === undefined || !ipaddr.isValid(ip)) return 'unknown';
  const address = ipaddr.process(ip); // an IPv4-mapped IPv6 address becomes its IPv4 address
  if (address.kind() === 'ipv4') return address.toString();
  const parts = (address as ipaddr.IPv6).parts.slice(0, 4);
  return `${parts.map((part) => part.toString(16)).join(':')}::/64`;
}
