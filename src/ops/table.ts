import type { ExecutorTable } from '../solver/types.js'
import { addExecutor } from './add.js'
import { configExecutor } from './config.js'
import { copyExecutor } from './copy.js'
import { runExecutor } from './run.js'
import { sourceExecutor } from './source.js'

/** kind → executor. The type makes a missing kind a compile error. */
export const executors: ExecutorTable = Object.freeze({
  source: sourceExecutor,
  copy: copyExecutor,
  add: addExecutor,
  run: runExecutor,
  config: configExecutor,
})
