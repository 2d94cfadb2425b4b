/**
 * The security headers of every answer, computed once. Keel's own answers are JSON for programs,
 * so the policy is the strictest one: load nothing, frame nothing (pages that need more, such as
 * /docs, set their own Content-Security-Policy on their routes). Helmet computed these per request
 * (13% of a cheap call's CPU, docs/decisions/0011-request-path.md) and, made for HTML sites,
 * allowed framing from the same origin.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-frame-options': 'DENY',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0',
};

/** A Content-Security-Policy header value from directives (`{ 'script-src': ["'self'"] }`). */
export const cspOf = (directives: Record<string, string[]>): string =>
  Object.entries(directives)
    .map(([name, values]) => `${name} ${values.join(' ')}`)
    .join('; ');
