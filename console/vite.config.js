// Builds the console into the directory the gateway serves (--console_dir). scripts/build.sh
// passes --outDir <build>/console; assets get content-hashed names under assets/, which the
// gateway caches for a year.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    // Everything the page loads is a file of its own: the CSP allows no inline script or style,
    // and no data: URL other than images.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    // `npm run dev`: the API from a gateway running with run-local.sh.
    proxy: { '/v1': 'http://127.0.0.1:8080' },
  },
});
