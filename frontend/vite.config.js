import { defineConfig } from 'vite';

// Built into frontend/dist/reader/ with fixed entry names so Django templates can use
// {% static 'reader/reading.js' %} without a manifest. Chunks, workers and wasm keep
// hashed names (they are referenced from the entry by relative URLs, hence base './').
export default defineConfig({
  base: './',
  // The dicom-image-loader spawns its decode worker with `new URL(..., import.meta.url)`;
  // pre-bundling it in dev would break that URL (Cornerstone3D's Vite recipe).
  optimizeDeps: {
    exclude: ['@cornerstonejs/dicom-image-loader'],
    include: ['dicom-parser'],
  },
  worker: {
    format: 'es',
    rollupOptions: {
      output: {
        entryFileNames: 'reader/workers/[name]-[hash].js',
        chunkFileNames: 'reader/workers/[name]-[hash].js',
        assetFileNames: 'reader/assets/[name]-[hash][extname]',
      },
    },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 4000,
    rollupOptions: {
      input: { reading: 'src/reader/reading.js' },
      output: {
        entryFileNames: 'reader/[name].js',
        chunkFileNames: 'reader/chunks/[name]-[hash].js',
        assetFileNames: (asset) =>
          (asset.names || []).some((n) => n.endsWith('.css'))
            ? 'reader/[name][extname]'
            : 'reader/assets/[name]-[hash][extname]',
      },
    },
  },
  test: {
    include: ['src/**/*.test.js'],
    environment: 'node',
  },
});
