// One image per npm workspace package, all on one shared base, built in ONE solve:
//
//   imagesmith bake examples/monorepo/build.ts --context examples/monorepo --out-dir dist/images
//   imagesmith bake examples/monorepo/build.ts web --push --set '*.tags=registry.example/{target}:1.2'
//
// The targets come from the root package.json's `workspaces` list, so a new package is a new image
// with no change here. The base step is one vertex of the bake's graph: it runs once for all of them.
// BASE_IMAGE names the base (a Node image in a real repository; the tests use busybox).
import { readFileSync, readdirSync, existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { image, type ImageBuilder } from 'imagesmith'

const root = dirname(fileURLToPath(import.meta.url))
const baseImage = process.env['BASE_IMAGE'] ?? 'docker.io/library/node:20-alpine'

/** The workspace package directories: `packages/*` entries expanded, others taken as they are. */
function workspaces(): string[] {
  const { workspaces = [] } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { workspaces?: string[] }
  return workspaces.flatMap((w) =>
    w.endsWith('/*')
      ? readdirSync(join(root, w.slice(0, -2)), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => `${w.slice(0, -2)}/${d.name}`)
      : [w],
  ).filter((dir) => existsSync(join(root, dir, 'package.json'))).sort()
}

// The service user, written plainly (no adduser: the same on Alpine, Debian and busybox bases).
const base = image()
  .from(baseImage)
  .run("echo 'app:x:10001:10001::/app:/sbin/nologin' >> /etc/passwd && mkdir -p /app && chown 10001:10001 /app")
  .workdir('/app')

/** The package's name without its scope is the target's (`@acme/web` → `web`). */
const targets: Record<string, ImageBuilder> = {}
for (const dir of workspaces()) {
  const { name, main = 'index.js' } = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) as { name: string; main?: string }
  targets[name.replace(/^@[^/]+\//, '')] = base
    .copy(`${dir}/`, '/app/', { chown: '10001:10001' })
    .label('org.opencontainers.image.title', name)
    .user('10001')
    .cmd(['node', main])
}

export default targets
