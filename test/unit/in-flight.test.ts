import { describe, expect, it } from 'vitest'
import { InFlight } from '../../src/util/in-flight.js'
import { ErrorCodes } from '../../src/errors.js'

/** A promise and its resolver, to hold work in flight until the test lets it finish. */
function gate<T>(): { promise: Promise<T>; open: (v: T) => void } {
  let open!: (v: T) => void
  const promise = new Promise<T>((r) => (open = r))
  return { promise, open }
}

describe('InFlight: identical work in flight runs once, each caller keeps its signal', () => {
  it('callers of one key share one run; a settled run is forgotten', async () => {
    const flights = new InFlight<number>()
    let runs = 0
    const g = gate<number>()
    const work = async () => {
      runs++
      return g.promise
    }
    const all = Promise.all(Array.from({ length: 10 }, () => flights.run('k', work)))
    g.open(7)
    expect(await all).toEqual(Array(10).fill(7))
    expect(runs).toBe(1)
    expect(flights.size).toBe(0)
    expect(await flights.run('k', async () => 8)).toBe(8)
  })

  it("one caller's abort fails that caller only; the run goes on for the other", async () => {
    const flights = new InFlight<string>()
    const g = gate<string>()
    let workSignal: AbortSignal | undefined
    const work = async (s: AbortSignal) => {
      workSignal = s
      return g.promise
    }
    const a = new AbortController()
    const pa = flights.run('k', work, a.signal)
    const pb = flights.run('k', work, new AbortController().signal)
    a.abort()
    await expect(pa).rejects.toMatchObject({ code: ErrorCodes.ABORTED })
    g.open('done')
    expect(await pb).toBe('done')
    expect(workSignal?.aborted).toBe(false)
  })

  it('when every caller aborted, the run is aborted and a later caller starts its own', async () => {
    const flights = new InFlight<string>()
    let workSignal: AbortSignal | undefined
    const stuck = (s: AbortSignal) => {
      workSignal = s
      return new Promise<string>((_, reject) => s.addEventListener('abort', () => reject(new Error('stopped'))))
    }
    const a = new AbortController()
    const b = new AbortController()
    const pa = flights.run('k', stuck, a.signal)
    const pb = flights.run('k', stuck, b.signal)
    a.abort()
    await expect(pa).rejects.toMatchObject({ code: ErrorCodes.ABORTED })
    await Promise.resolve()
    expect(workSignal?.aborted).toBe(false)
    b.abort()
    await expect(pb).rejects.toMatchObject({ code: ErrorCodes.ABORTED })
    expect(workSignal?.aborted).toBe(true)
    expect(flights.size).toBe(0)
    expect(await flights.run('k', async () => 'fresh')).toBe('fresh')
  })

  it('a failed run reports its error to every caller and is forgotten', async () => {
    const flights = new InFlight<string>()
    const fail = async (): Promise<string> => {
      throw new Error('boom')
    }
    const both = [flights.run('k', fail), flights.run('k', fail, new AbortController().signal)]
    for (const p of both) await expect(p).rejects.toThrow('boom')
    expect(flights.size).toBe(0)
  })
})
