import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// The build goes to dist/: dist/index.html and fingerprinted files under
// dist/assets/ (index-3f2a9c1b.js), which portico serves with a year of
// Cache-Control (see portico.toml).
export default defineConfig({
  plugins: [vue()],
  build: { outDir: 'dist', assetsDir: 'assets' },
})
