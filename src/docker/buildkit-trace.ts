/**
 * The engine's `moby.buildkit.trace` messages: each `aux` is a base64 protobuf
 * `moby.buildkit.v1.StatusResponse` (field numbers from moby/buildkit
 * api/services/control/control.proto), decoded with protobufjs reflection types rather than by hand.
 */
import { createRequire } from 'node:module'
import type { Message, Type } from 'protobufjs'

/**
 * The message types, made on the first trace: protobufjs (45 CommonJS modules) is loaded only by a
 * build handed to an engine, not by every start of the CLI.
 */
let statusResponse: Type | undefined
function statusType(): Type {
  if (statusResponse) return statusResponse
  const { Field, Root, Type } = createRequire(import.meta.url)('protobufjs') as typeof import('protobufjs')
  const Timestamp = new Type('Timestamp').add(new Field('seconds', 1, 'int64')).add(new Field('nanos', 2, 'int32'))
  const Vertex = new Type('Vertex')
    .add(new Field('digest', 1, 'string'))
    .add(new Field('inputs', 2, 'string', 'repeated'))
    .add(new Field('name', 3, 'string'))
    .add(new Field('cached', 4, 'bool'))
    .add(new Field('started', 5, 'Timestamp'))
    .add(new Field('completed', 6, 'Timestamp'))
    .add(new Field('error', 7, 'string'))

  const VertexStatus = new Type('VertexStatus')
    .add(new Field('ID', 1, 'string'))
    .add(new Field('vertex', 2, 'string'))
    .add(new Field('name', 3, 'string'))
    .add(new Field('current', 4, 'int64'))
    .add(new Field('total', 5, 'int64'))
    .add(new Field('timestamp', 6, 'Timestamp'))
    .add(new Field('started', 7, 'Timestamp'))
    .add(new Field('completed', 8, 'Timestamp'))

  const VertexLog = new Type('VertexLog')
    .add(new Field('vertex', 1, 'string'))
    .add(new Field('timestamp', 2, 'Timestamp'))
    .add(new Field('stream', 3, 'int64'))
    .add(new Field('msg', 4, 'bytes'))

  const VertexWarning = new Type('VertexWarning')
    .add(new Field('vertex', 1, 'string'))
    .add(new Field('level', 2, 'int64'))
    .add(new Field('short', 3, 'bytes'))
    .add(new Field('detail', 4, 'bytes', 'repeated'))
    .add(new Field('url', 5, 'string'))

  statusResponse = new Type('StatusResponse')
    .add(new Field('vertexes', 1, 'Vertex', 'repeated'))
    .add(new Field('statuses', 2, 'VertexStatus', 'repeated'))
    .add(new Field('logs', 3, 'VertexLog', 'repeated'))
    .add(new Field('warnings', 4, 'VertexWarning', 'repeated'))

  new Root().define('moby.buildkit.v1').add(Timestamp).add(Vertex).add(VertexStatus).add(VertexLog).add(VertexWarning).add(statusResponse)
  return statusResponse
}

/** A step as the engine reports it; times are ms since the epoch. */
export interface TraceVertex {
  readonly digest: string
  readonly inputs: readonly string[]
  readonly name: string
  readonly cached: boolean
  readonly started?: number
  readonly completed?: number
  readonly error?: string
}

export interface TraceStatus {
  readonly id: string
  readonly vertex: string
  readonly name: string
  readonly current: number
  readonly total: number
  readonly completed?: number
}

export interface TraceLog {
  readonly vertex: string
  /** 1 stdout, 2 stderr. */
  readonly stream: number
  readonly data: Buffer
  readonly timestamp?: number
}

export interface TraceWarning {
  readonly vertex: string
  readonly short: string
}

export interface BuildkitStatus {
  readonly vertexes: readonly TraceVertex[]
  readonly statuses: readonly TraceStatus[]
  readonly logs: readonly TraceLog[]
  readonly warnings: readonly TraceWarning[]
}

/** Most bytes of one decoded trace message: the engine sends small batches; more is not a status. */
export const MAX_TRACE_BYTES = 8 << 20

/** One `moby.buildkit.trace` aux value (base64) as plain data; throws on bytes that are not a StatusResponse. */
export function decodeBuildkitTrace(aux: string): BuildkitStatus {
  const bytes = Buffer.from(aux, 'base64')
  if (bytes.length > MAX_TRACE_BYTES) throw new RangeError(`a trace message of ${bytes.length} bytes is over ${MAX_TRACE_BYTES}`)
  const type = statusType()
  const msg = type.toObject(type.decode(bytes), { longs: Number, bytes: Buffer, defaults: true, arrays: true }) as Record<string, Message[] | undefined>
  const list = (k: string) => (msg[k] ?? []) as unknown as Record<string, unknown>[]
  return {
    vertexes: list('vertexes').map((v) => ({
      digest: String(v.digest),
      inputs: (v.inputs as string[]) ?? [],
      name: String(v.name),
      cached: v.cached === true,
      ...opt('started', ms(v.started)),
      ...opt('completed', ms(v.completed)),
      ...(v.error ? { error: String(v.error) } : {}),
    })),
    statuses: list('statuses').map((s) => ({
      id: String(s.ID),
      vertex: String(s.vertex),
      name: String(s.name),
      current: Number(s.current),
      total: Number(s.total),
      ...opt('completed', ms(s.completed)),
    })),
    logs: list('logs').map((l) => ({ vertex: String(l.vertex), stream: Number(l.stream), data: toBuffer(l.msg), ...opt('timestamp', ms(l.timestamp)) })),
    warnings: list('warnings').map((w) => ({ vertex: String(w.vertex), short: toBuffer(w.short).toString('utf8') })),
  }
}

function toBuffer(v: unknown): Buffer {
  return Buffer.isBuffer(v) ? v : v instanceof Uint8Array ? Buffer.from(v) : Buffer.alloc(0)
}

/** A Timestamp message as ms since the epoch; an absent (null) or all-zero one as undefined. */
function ms(t: unknown): number | undefined {
  if (!t || typeof t !== 'object') return undefined
  const { seconds, nanos } = t as { seconds?: number; nanos?: number }
  const s = Number(seconds ?? 0)
  if (s === 0 && !nanos) return undefined
  return s * 1000 + Math.floor(Number(nanos ?? 0) / 1e6)
}

function opt<K extends string>(k: K, v: number | undefined): { [P in K]?: number } {
  return (v === undefined ? {} : { [k]: v }) as { [P in K]?: number }
}
