// A two-stage build whose slow part is a RUN, shared through a cache so that a CI runner that starts
// with an empty store rebuilds nothing another runner already built:
//
//   # the runner that builds first exports every stage's layers (mode=max)
//   imagesmith build examples/shared-cache/build.ts --context examples/shared-cache \
//     --cache-to type=registry,ref=registry.example/app:buildcache,mode=max -o type=oci,dest=app.tar
//   # any later runner, on an empty store, imports it: every step is a hit, the digest is the same
//   imagesmith build examples/shared-cache/build.ts --context examples/shared-cache \
//     --cache-from type=registry,ref=registry.example/app:buildcache -o type=oci,dest=app.tar
//
// A directory works the same way (`--cache-to type=local,dest=.cache/images`, `--cache-from
// type=local,src=.cache/images`: an OCI layout, pruned on each export), and `--cache-to type=inline`
// rides in a pushed image's config. From code: `build({ cacheTo: [...], cacheFrom: [...] })`.
// Import only from caches you trust: a cache decides what a hit step's layer holds.
// BASE_IMAGE names the base (busybox from Docker Hub by default; the tests use an offline archive).
import { image } from 'imagesmith'

const base = image().from(process.env['BASE_IMAGE'] ?? 'docker.io/library/busybox:1.36')

// The slow step: stands for a dependency install or a compile.
const deps = base.workdir('/build').copy('src/', './').run('sleep 1 && sort words.txt | uniq -c > counts.txt')

export default base
  .copy('/build/counts.txt', '/srv/counts.txt', { from: deps })
  .label('org.opencontainers.image.title', 'imagesmith shared-cache example')
  .cmd(['cat', '/srv/counts.txt'])
