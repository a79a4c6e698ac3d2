/// <reference types="vitest" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The build must be byte-for-byte reproducible: CI rebuilds `dist` and compares it with the
// committed copy that `orca-http/build.rs` embeds.
export default defineConfig({
  plugins: [react()],
  build: {
    // CI builds into a temporary directory (ORCA_DIST) and compares it with the committed dist.
    outDir: process.env.ORCA_DIST ?? 'dist',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2020',
    chunkSizeWarningLimit: 1000,
    modulePreload: { polyfill: false },
  },
  server: {
    proxy: {
      '/api': { target: 'http://127.0.0.1:8080', ws: true },
    },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.ts', 'src/**/*.test.tsx'],
  },
});
