import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LayerEntry } from '../../src/layer/entry.js'
import { MEMBER_MAX, MemberSplitter, type MemberCutSizes, type RawMember } from '../../src/layer/member-cut.js'
import { compressMembers, PreviousMembers } from '../../src/layer/members.js'
import { TarSerializer } from '../../src/layer/tar-writer.js'
import { ErrorCodes } from '../../src/errors.js'
import { deflateWithStored, storedRanges } from '../../src/layer/member-deflate.js'
import { sortEntries, writeLayer } from '../../src/layer/write-layer.js'
import { BlobStore } from '../../src/store/blob-store.js'
import { readMemberIndex, writeMemberIndex } from '../../src/store/member-index.js'
import { prng } from '../helpers/prng.js'

const MTIME = 1_700_000_000
/** Small members, so a tree of a few dozen small files spans many of them. */
const SMALL: MemberCutSizes = { min: 4 << 10, max: 16 << 10, markOneIn: 4 }

let root: string
beforeAll(() => { root = mkdtempSync(join(tmpdir(), 'ism-members-')) })
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** Half text-like (compressible), half noise, as real contexts are. */
function content(rnd: () => number, maxSize: number): Buffer {
  const n = Math.floor(rnd() * maxSize)
  if (rnd() < 0.5) return Buffer.alloc(n, `line ${Math.floor(rnd() * 1000)} lorem ipsum\n`)
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256)
  return b
}

/** The tree under `dir` as layer entries (what COPY would make of it, without the context walk). */
function entriesOf(dir: string): LayerEntry[] {
  const out: LayerEntry[] = []
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel))) {
      const r = rel ? `${rel}/${name}` : name
      const st = statSync(join(dir, r))
      const base = { path: r, mode: st.mode & 0o7777, uid: 0, gid: 0, mtime: MTIME }
      if (st.isDirectory()) {
        out.push({ ...base, type: 'dir' })
        walk(r)
      } else {
        out.push({ ...base, type: 'file', size: st.size, source: { path: join(dir, r) } })
      }
    }
  }
  walk('')
  return sortEntries(out)
}

async function newStore(): Promise<{ blobs: BlobStore; members: string }> {
  const dir = mkdtempSync(join(root, 'store-'))
  const blobs = new BlobStore(dir)
  await blobs.init()
  return { blobs, members: join(dir, 'layer-members') }
}

type Counts = { reused: number; compressed: number }

/** The sha256 of every file, as a COPY's content key hands them to the writer (`expect`). */
function expectOf(entries: LayerEntry[]): Map<string, string> {
  const m = new Map<string, string>()
  for (const e of entries) if (e.type === 'file' && 'path' in e.source) m.set(e.source.path, sha256(readFileSync(e.source.path)))
  return m
}

async function build(store: { blobs: BlobStore; members: string }, dir: string, previous?: string, cut?: MemberCutSizes, level?: number, withExpect = false) {
  let counts: Counts = { reused: -1, compressed: -1 }
  const entries = entriesOf(dir)
  const ref = await writeLayer(entries, store.blobs, {
    ...(level !== undefined ? { level } : {}),
    ...(withExpect ? { expect: expectOf(entries) } : {}),
    members: {
      dir: store.members,
      ...(previous ? { previous: { digest: previous, path: store.blobs.blobPath(previous as `sha256:${string}`) } } : {}),
      onDone: (c) => { counts = c },
      ...(cut ? { cut } : {}),
    },
  })
  return { ref, counts }
}

/** One random edit of the tree: edit, add, delete, rename or chmod a file. */
function edit(dir: string, rnd: () => number, maxSize: number): void {
  const files: string[] = []
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name
      if (statSync(join(dir, r)).isDirectory()) walk(r)
      else files.push(r)
    }
  }
  walk('')
  const pick = () => files[Math.floor(rnd() * files.length)]!
  const kind = files.length === 0 ? 1 : Math.floor(rnd() * 5)
  if (kind === 0) writeFileSync(join(dir, pick()), content(rnd, maxSize))
  else if (kind === 1) {
    const sub = `d${Math.floor(rnd() * 4)}`
    mkdirSync(join(dir, sub), { recursive: true })
    writeFileSync(join(dir, sub, `new${Math.floor(rnd() * 1e6)}.dat`), content(rnd, maxSize))
  } else if (kind === 2) rmSync(join(dir, pick()))
  else if (kind === 3) {
    const sub = `d${Math.floor(rnd() * 4)}`
    mkdirSync(join(dir, sub), { recursive: true })
    renameSync(join(dir, pick()), join(dir, sub, `moved${Math.floor(rnd() * 1e6)}.dat`))
  } else chmodSync(join(dir, pick()), rnd() < 0.5 ? 0o600 : 0o755)
}

function makeTree(dir: string, rnd: () => number, files: number, maxSize: number): void {
  for (let i = 0; i < files; i++) {
    const sub = join(dir, `d${i % 4}`)
    mkdirSync(sub, { recursive: true })
    writeFileSync(join(sub, `f${i}.dat`), content(rnd, maxSize))
  }
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex')
}

describe('gzip members reused across rebuilds', () => {
  it('the layer of every edit is byte-identical to a cold build of the same tree (300 seeded edit sequences)', async () => {
    let reusedTotal = 0
    let compressedTotal = 0
    for (let seed = 1; seed <= 300; seed++) {
      const rnd = prng(seed)
      const dir = mkdtempSync(join(root, `tree-${seed}-`))
      makeTree(dir, rnd, 8 + Math.floor(rnd() * 24), 6 << 10)
      const inc = await newStore()
      // Half the sequences hand the writer the files' hashes (as COPY does), which key the members.
      const withExpect = seed % 2 === 0
      let prev = (await build(inc, dir, undefined, SMALL, 1, withExpect)).ref.digest
      const steps = 1 + Math.floor(rnd() * 4)
      for (let s = 0; s < steps; s++) {
        edit(dir, rnd, 6 << 10)
        const again = await build(inc, dir, prev, SMALL, 1, withExpect)
        const cold = await build(await newStore(), dir, undefined, SMALL, 1, withExpect)
        expect(again.ref, `seed ${seed} step ${s}`).toEqual(cold.ref)
        expect(cold.counts.reused).toBe(0)
        reusedTotal += again.counts.reused
        compressedTotal += again.counts.compressed
        prev = again.ref.digest
      }
      rmSync(dir, { recursive: true, force: true })
    }
    // An edit touches its own neighbourhood: most members of a rebuild are copied.
    expect(reusedTotal).toBeGreaterThan(compressedTotal)
  }, 180_000)

  it('at the real member sizes, a one-file change copies every member but its own', async () => {
    const rnd = prng(7)
    const dir = mkdtempSync(join(root, 'big-'))
    makeTree(dir, rnd, 300, 40 << 10)
    writeFileSync(join(dir, 'd1', 'huge.bin'), content(() => 0.9, 3 * MEMBER_MAX)) // split inside the entry
    const store = await newStore()
    const first = await build(store, dir, undefined, undefined, undefined, true)
    expect(first.counts.compressed).toBeGreaterThan(3)
    writeFileSync(join(dir, 'd2', 'f2.dat'), 'changed\n')
    const again = await build(store, dir, first.ref.digest, undefined, undefined, true)
    const cold = await build(await newStore(), dir)
    expect(again.ref).toEqual(cold.ref)
    expect(again.counts.compressed).toBeLessThanOrEqual(2)
    expect(again.counts.reused).toBeGreaterThanOrEqual(first.counts.compressed - 2)
    // A concatenation of members is one gzip stream of the whole tar.
    const blob = readFileSync(store.blobs.blobPath(again.ref.digest))
    expect(`sha256:${sha256(gunzipSync(blob))}`).toBe(again.ref.diffId)
  }, 60_000)
})

describe('gzip member index crash safety', () => {
  async function setup() {
    const rnd = prng(99)
    const dir = mkdtempSync(join(root, 'crash-'))
    makeTree(dir, rnd, 40, 6 << 10)
    const store = await newStore()
    const first = await build(store, dir, undefined, SMALL)
    writeFileSync(join(dir, 'd0', 'f0.dat'), 'edited\n')
    const cold = await build(await newStore(), dir, undefined, SMALL)
    const indexPath = join(store.members, `${first.ref.digest.slice(7)}.json`)
    return { dir, store, first, cold, indexPath, blobPath: store.blobs.blobPath(first.ref.digest) }
  }

  it('an intact index and blob are reused (the baseline the cases below depart from)', async () => {
    const { dir, store, first, cold } = await setup()
    const again = await build(store, dir, first.ref.digest, SMALL)
    expect(again.ref).toEqual(cold.ref)
    expect(again.counts.reused).toBeGreaterThan(0)
  })

  it('a truncated, bit-flipped or edited index is not read; the layer is written in full', async () => {
    for (const damage of ['truncate', 'flip', 'edit'] as const) {
      const { dir, store, first, cold, indexPath } = await setup()
      const text = readFileSync(indexPath)
      if (damage === 'truncate') truncateSync(indexPath, Math.floor(text.length / 2))
      else if (damage === 'flip') {
        text[text.length - 20] ^= 0x01
        writeFileSync(indexPath, text)
      } else {
        // Still a well-formed index, one CRC off: only the checksum over the body tells.
        const s = text.toString('utf8')
        const nl = s.indexOf('\n')
        const body = JSON.parse(s.slice(nl + 1)) as { members: [number, string, number, number][] }
        body.members[0]![3] = (body.members[0]![3] + 1) % 2 ** 32
        writeFileSync(indexPath, `${s.slice(0, nl)}\n${JSON.stringify(body)}`)
      }
      expect(await readMemberIndex(store.members, first.ref.digest)).toBeUndefined()
      const again = await build(store, dir, first.ref.digest, SMALL)
      expect(again.ref).toEqual(cold.ref)
      expect(again.counts.reused).toBe(0)
    }
  })

  it('an index whose member hashes were swapped (checksum made to match) copies nothing it cannot verify', async () => {
    const { dir, store, first, cold, indexPath } = await setup()
    const text = readFileSync(indexPath, 'utf8')
    const body = JSON.parse(text.slice(text.indexOf('\n') + 1)) as { members: [number, string, number, number][] }
    // The last two members (far from the edit, so both are wanted again) claim each other's content.
    const n = body.members.length
    const [a, b] = [body.members[n - 2]!, body.members[n - 1]!]
    ;[a[0], b[0]] = [b[0], a[0]]
    ;[a[1], b[1]] = [b[1], a[1]]
    const json = JSON.stringify(body)
    writeFileSync(indexPath, `${sha256(Buffer.from(json))}\n${json}`)
    const again = await build(store, dir, first.ref.digest, SMALL)
    expect(again.ref).toEqual(cold.ref)
  })

  it('a damaged or truncated previous blob is detected: its members are compressed again', async () => {
    for (const damage of ['flip', 'truncate'] as const) {
      const { dir, store, first, cold, blobPath } = await setup()
      const blob = readFileSync(blobPath)
      if (damage === 'truncate') truncateSync(blobPath, blob.length - 100)
      else {
        blob[Math.floor(blob.length / 2)] ^= 0x40
        writeFileSync(blobPath, blob)
      }
      const again = await build(store, dir, first.ref.digest, SMALL)
      expect(again.ref).toEqual(cold.ref)
      expect(again.counts.compressed).toBeGreaterThan(1)
    }
  })

  it('an index of another level or zlib is not used', async () => {
    const { dir, store, first, cold } = await setup()
    const other = await build(store, dir, first.ref.digest, SMALL, 1)
    expect(other.counts.reused).toBe(0)
    expect(other.ref.diffId).toBe(cold.ref.diffId)
  })
})

describe('MemberSplitter', () => {
  it('cuts by the entries alone: members end at marked entry ends or at max, never past it', () => {
    const sizes: MemberCutSizes = { min: 1024, max: 4096, markOneIn: 2 }
    const s = new MemberSplitter(2, sizes)
    const lens: number[] = []
    let pos = 0
    for (let i = 0; i < 50; i++) {
      const e: LayerEntry = { type: 'file', path: `p${i}`, mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 700, source: { data: Buffer.alloc(700) } }
      s.entryStart(pos, e)
      pos += 1536
      s.entryEnd(pos, e)
      for (const m of s.feed(Buffer.alloc(1536))) lens.push(m.bytes.length)
    }
    const last = s.finish()
    if (last) lens.push(last.bytes.length)
    expect(lens.reduce((a, b) => a + b, 0)).toBe(pos)
    expect(Math.max(...lens)).toBeLessThanOrEqual(4096)
    expect(lens.some((l) => l % 1536 === 0 && l < 4096)).toBe(true)
  })
})

describe('deflateWithStored', () => {
  const noise = (n: number, seed: number) => {
    const rnd = prng(seed)
    const b = Buffer.allocUnsafe(n)
    for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256)
    return b
  }

  it('stores high-entropy file contents, deflates text and headers, and the member reads back as the same bytes', async () => {
    const text = Buffer.alloc(100_000, 'some text that compresses well\n')
    const bytes = Buffer.concat([Buffer.alloc(512, 1), noise(150_000, 3), Buffer.alloc(512, 2), text, noise(3000, 4)])
    const member = { bytes, data: [[512, 150_512], [151_024, 251_024], [251_024, 254_024]] as const }
    const stored = storedRanges(member)
    // The noise file is stored whole; the text and the too-small noise file are not.
    expect(stored).toEqual([[512, 150_512]])
    const out = await deflateWithStored(bytes, stored, 6)
    expect(gunzipSync(out).equals(bytes)).toBe(true)
    expect(out.length).toBeLessThan(150_000 + 3000 + 2000)
    const path = join(root, 'member.gz')
    writeFileSync(path, out)
    expect(execFileSync('gzip', ['-dc', path], { maxBuffer: 1 << 20 }).equals(bytes)).toBe(true)
  })

  it('is a valid member when everything is stored, across 64 KiB stored-block limits', async () => {
    const bytes = noise(200_000, 9)
    const stored = storedRanges({ bytes, data: [[0, bytes.length]] })
    expect(stored).toEqual([[0, bytes.length]])
    const out = await deflateWithStored(bytes, stored, 6)
    expect(gunzipSync(out).equals(bytes)).toBe(true)
    expect(out.length).toBe(10 + bytes.length + 5 * Math.ceil(bytes.length / 0xffff) + 5 + 8)
  })
})

describe('content checks left to the member writer', () => {
  const hex = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

  it('the tar writer does not hash a file whose check onData takes over, and hashes the others', () => {
    const dir = mkdtempSync(join(root, 'later-'))
    const host = join(dir, 'f.txt')
    writeFileSync(host, 'bytes on disk\n')
    const entry: LayerEntry = { type: 'file', path: 'f.txt', mode: 0o644, uid: 0, gid: 0, mtime: MTIME, size: 14, source: { path: host } }
    const stale = hex('other bytes!!\n')
    const seen: unknown[] = []
    const run = (take: boolean) => [...new TarSerializer({ expect: new Map([[host, stale]]), onData: (_s, _n, sha, where) => { seen.push([sha, where]); return take } }).add(entry)]
    expect(() => run(true)).not.toThrow()
    expect(seen).toEqual([[stale, { path: 'f.txt', source: host }]])
    expect(() => run(false)).toThrow(expect.objectContaining({ code: ErrorCodes.SOURCE_CHANGED }))
  })

  it('a member whose bytes it compresses is checked (SOURCE_CHANGED, nothing yielded); one it copies from the previous blob is not', async () => {
    const bytes = Buffer.concat([Buffer.alloc(512, 1), Buffer.alloc(5000, 'text\n'), Buffer.alloc(120)])
    // The hash the key was made with; the bytes on disk now differ (edited after the key).
    const keyed = hex(Buffer.alloc(5000, 'TEXT\n'))
    const where = { path: 'app/f.txt', source: '/ctx/f.txt' }
    const member = (): RawMember => ({ bytes: Buffer.from(bytes), data: [[512, 5512, keyed]], checks: [{ start: 512, end: 5512, sha256: keyed, where }] })
    const drain = async (previous?: PreviousMembers) => {
      const out = []
      for await (const m of compressMembers([member()], { level: 6, ...(previous ? { previous } : {}) })) out.push(m)
      return out
    }
    const err = await drain().catch((e: unknown) => e)
    expect(err).toMatchObject({ code: ErrorCodes.SOURCE_CHANGED, details: { path: where.path, source: where.source, expected: `sha256:${keyed}`, actual: `sha256:${hex(bytes.subarray(512, 5512))}` } })

    // A previous blob holding this member under the same key (made without the check): copied, not checked.
    const { checks: _checks, ...unchecked } = member()
    const made = []
    for await (const m of compressMembers([unchecked], { level: 6 })) made.push(m)
    const blob = Buffer.concat(made.map((m) => m.bytes))
    const dir = mkdtempSync(join(root, 'prev-'))
    const digest = `sha256:${hex(blob)}`
    writeFileSync(join(dir, 'blob'), blob)
    await writeMemberIndex(join(dir, 'idx'), { digest, level: 6, zlib: process.versions.zlib, members: made.map((m) => m.record) })
    const previous = await PreviousMembers.open(join(dir, 'idx'), digest, join(dir, 'blob'), 6)
    expect(previous).toBeDefined()
    try {
      const out = await drain(previous)
      expect(out.map((m) => m.reused)).toEqual([true])
      expect(out[0]!.bytes.equals(blob)).toBe(true)
    } finally {
      previous!.close()
    }
  })

  it('a file edited after its key was made still fails a layer write with SOURCE_CHANGED when its member is compressed', async () => {
    const rnd = prng(5)
    const dir = mkdtempSync(join(root, 'edited-'))
    makeTree(dir, rnd, 20, 4 << 10)
    const store = await newStore()
    const entries = entriesOf(dir)
    const expectMap = expectOf(entries)
    const victim = entries.find((e) => e.type === 'file' && e.size > 100)!
    const host = (victim as { source: { path: string } }).source.path
    const bytes = readFileSync(host)
    bytes[0] = bytes[0]! ^ 0xff
    writeFileSync(host, bytes)
    const err = await writeLayer(entries, store.blobs, { expect: expectMap, members: { dir: store.members } }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: ErrorCodes.SOURCE_CHANGED, details: { path: victim.path, source: host } })
    expect(readdirSync(join(store.blobs.root, 'blobs', 'sha256'))).toEqual([])
  })
})
