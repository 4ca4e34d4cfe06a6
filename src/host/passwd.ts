export interface PasswdEntry { name: string; uid: number; gid: number; home: string }

/** The entries of an /etc/passwd text (an image's, or the host's); comments and malformed lines are skipped. */
export function parsePasswd(text: string | undefined): PasswdEntry[] {
  const out: PasswdEntry[] = []
  for (const line of (text ?? '').split('\n')) {
    const f = line.split(':')
    if (f.length < 4 || line.startsWith('#')) continue
    const uid = Number(f[2])
    const gid = Number(f[3])
    if (Number.isInteger(uid) && Number.isInteger(gid)) out.push({ name: f[0]!, uid, gid, home: f[5] ?? '' })
  }
  return out
}
