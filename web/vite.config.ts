import { defineConfig } from 'vite';

// The console is built into dist/ and embedded in the weft binary (embed.go).
// Everything is bundled: the page loads nothing from elsewhere.
export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1200,
    sourcemap: false,
  },
  server: {
    proxy: { '/api': process.env.WEFT_CONSOLE_API ?? 'http://127.0.0.1:15014' },
  },
});
