import { randomBytes } from 'node:crypto';
import type { AppDeps } from '../../server/src/deps.js';
import { hashPassword } from '../../server/src/lib/password.js';
import type { Role } from '../../server/src/modules/auth/schemas.js';

/** The password every factory user has, unless told otherwise. */
export const KNOWN_PASSWORD = 'correct-horse-battery-staple';

export interface UserOverrides {
  email?: string;
  name?: string | null;
  password?: string;
  role?: Role;
  active?: boolean;
  emailVerified?: boolean;
}

export interface TestUser {
  id: string;
  email: string;
  role: Role;
  password: string;
}

let counter = 0;

/** A user row with a real argon2id hash of a known password. */
export async function createUser(deps: AppDeps, overrides: UserOverrides = {}): Promise<TestUser> {
  counter += 1;
  const email = overrides.email ?? `user${counter}-${randomBytes(3).toString('hex')}@example.test`;
  const password = overrides.password ?? KNOWN_PASSWORD;
  const user = await deps.database.prisma.user.create({
    data: {
      email,
      name: overrides.name === undefined ? `User ${counter}` : overrides.name,
      role: overrides.role ?? 'USER',
      active: overrides.active ?? true,
      emailVerified: overrides.emailVerified ?? false,
      passwordHash: await hashPassword(password, deps.config.passwords),
    },
    select: { id: true, email: true, role: true },
  });
  return { ...user, password };
}
