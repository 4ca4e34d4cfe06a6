// A monorepo's shared base image, built once and named locally:
//
//   imagesmith build examples/local-base/base.ts -t mono/base:1
//
// The tag is recorded in the store (`imagesmith images` lists it), so app.ts can start FROM it with
// no registry. BASE_IMAGE picks what this base itself starts from (default busybox from its
// registry; offline, e.g. BASE_IMAGE=oci-archive:/path/to/busybox.tar).
import { image } from 'imagesmith'

export default image()
  .from(process.env.BASE_IMAGE ?? 'busybox')
  .run('mkdir -p /opt/mono && echo "mono base 1" > /opt/mono/VERSION')
  .env('MONO_BASE', '1')
