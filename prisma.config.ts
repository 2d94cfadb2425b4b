import { defineConfig } from 'prisma/config';

// The Prisma CLI (generate, studio, and migrate where its native engine is available) reads this.
// DATABASE_URL is optional here: generation needs none, and `pnpm studio` sets it.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations', seed: 'tsx prisma/seed.ts' },
  datasource: { url: process.env.DATABASE_URL ?? '' },
});
