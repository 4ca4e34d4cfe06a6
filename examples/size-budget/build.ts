// An image that ships bytes no container can see, and a budget that catches it:
//
//   imagesmith build examples/size-budget/build.ts --context examples/size-budget -o type=oci,dest=app.tar \
//     --budget size=120MB,wasted=1MB,layers=30          # fails: BUDGET_EXCEEDED names /tmp/assets.tar and both steps
//   imagesmith build examples/size-budget/build.ts --context examples/size-budget -o type=oci,dest=app.tar
//   imagesmith inspect app.tar --layers                 # each layer's step, size, largest paths; the hidden bytes
//   imagesmith inspect app.tar --layers --ci            # .dive-ci's rules (lowestEfficiency, highestWastedBytes, …)
//   imagesmith diff app-v1.tar app.tar                  # what changed between two versions
//
// The budget is checked from what the layer writers saw while they wrote each layer: no layer is read
// again, and a build over budget leaves no output. The fix is to delete in the same step that adds:
// `.run('tar -xf /tmp/assets.tar -C /srv && rm /tmp/assets.tar')` with the archive fetched in that RUN.
// From code: `build({ budget: { size: 120_000_000, wasted: 1_000_000, layers: 30 }, … })` (bytes).
// BASE_IMAGE names the base (busybox from Docker Hub by default; the tests use an offline archive).
import { image } from 'imagesmith'

export default image()
  .from(process.env['BASE_IMAGE'] ?? 'docker.io/library/busybox:1.36')
  // 2 MB of assets, unpacked in a later step: the archive stays in this layer for good.
  .run('mkdir -p /tmp/assets && head -c 2000000 /dev/urandom > /tmp/assets/blob.bin && tar -cf /tmp/assets.tar -C /tmp assets && rm -r /tmp/assets')
  .run('mkdir -p /srv && tar -xf /tmp/assets.tar -C /srv && rm /tmp/assets.tar')
  .copy('site/', '/srv/www/')
  .cmd(['ls', '-l', '/srv'])
