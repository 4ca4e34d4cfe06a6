/**
 * The executor table the rootless worker serves: its entry (worker.ts) runs steps with this table,
 * and the parent refuses to hand the worker a solve meant for any other.
 */
export { executors as workerTable } from '../ops/table.js'
