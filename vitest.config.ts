import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 600_000,
    pool: 'forks',
    // The CLI runs from dist/ when it is fresh: rebuild it once before the tests when a source changed.
    globalSetup: ['test/helpers/dist-setup.ts'],
  },
})
