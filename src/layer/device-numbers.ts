/**
 * glibc's gnu_dev_major()/gnu_dev_minor() on a 64-bit dev_t:
 *   major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfff)
 *   minor = (dev & 0xff) | ((dev >> 12) & ~0xff)
 * JS bit operators work on 32 bits (and `x >>> 32` is `x >>> 0`), so the split is done on a
 * bigint. Stats.rdev is a double, exact up to 2^53; Linux's st_rdev fits in 32 bits (12-bit major,
 * 20-bit minor), and BigIntStats pass the full 64 bits.
 */
export function devMajor(rdev: number | bigint): number {
  const d = BigInt(rdev)
  return Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn))
}

export function devMinor(rdev: number | bigint): number {
  const d = BigInt(rdev)
  return Number((d & 0xffn) | ((d >> 12n) & ~0xffn & 0xffffffffn))
}
