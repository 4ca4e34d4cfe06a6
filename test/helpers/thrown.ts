import { expect } from 'vitest'
import { ImagesmithError } from '../../src/errors.js'

/** The ImagesmithError `fn` throws; fails the test when it throws nothing or something else. */
export function thrown(fn: () => unknown): ImagesmithError {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(ImagesmithError)
    return e as ImagesmithError
  }
  throw new Error('expected an error')
}
