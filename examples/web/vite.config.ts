import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const sdk = (path: string) => fileURLToPath(new URL(`../../client-sdk/src/${path}`, import.meta.url));

// The SDK from source (as `pnpm sdk:watch` consumers get it from dist): changes show at once, and
// only its type imports reach the server, which the bundler drops.
export default defineConfig({
  plugins: [react()],
  resolve: {
    alias: [
      { find: /^@keel\/client-sdk\/live$/, replacement: sdk('live.ts') },
      { find: /^@keel\/client-sdk$/, replacement: sdk('index.ts') },
    ],
  },
  server: { host: '127.0.0.1', port: 5173, strictPort: true },
  preview: { host: '127.0.0.1', port: 5173, strictPort: true },
});
