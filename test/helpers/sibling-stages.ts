/**
 * Eight sibling stages from one base, each made by a different step kind, combined by
 * `copy({ from })` into one image: the shape of a multi-stage build with parallel branches.
 * Shared by the in-process tests and the scripts other processes run (so they import nothing
 * of the test runner). The context they read: files `a`, `b` and an archive `e.tar.gz`.
 */
import { image, type ImageBuilder } from '../../src/index.js'

/** The three lines: two COPY siblings of one base, one copied into the other. */
export function twoSiblings(baseRef: string): ImageBuilder {
  const base = image().from(baseRef)
  const a = base.copy('a', '/app/')
  const b = base.copy('b', '/app/')
  return image().from(a).copy('/app/b', '/app/', { from: b })
}

export function eightSiblings(baseRef: string): ImageBuilder {
  const base = image().from(baseRef)
  const a = base.copy('a', '/app/')
  const b = base.copy('b', '/app/')
  const c = base.run('mkdir -p /out && echo c > /out/c.txt')
  const d = base.workdir('/w').copy('a', 'a-in-w')
  const e = base.add('e.tar.gz', '/e/')
  const f = base.copy('/app/a', '/f/', { from: a })
  const g = base.run('echo g > /g.txt').copy('/out/c.txt', '/g/', { from: c })
  const h = base.workdir('/h').add('b', 'b-added')
  return image()
    .from(a)
    .copy('/app/b', '/app/', { from: b })
    .copy('/out/c.txt', '/app/', { from: c })
    .copy('/w', '/w', { from: d })
    .copy('/e', '/e', { from: e })
    .copy('/f', '/f', { from: f })
    .copy('/g', '/g', { from: g })
    .copy('/g.txt', '/g/', { from: g })
    .copy('/h', '/h', { from: h })
}
