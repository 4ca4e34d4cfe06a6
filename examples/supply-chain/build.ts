// An app image shipped with an SBOM and SLSA provenance, as BuildKit attaches them:
//
//   imagesmith build examples/supply-chain/build.ts --context examples/supply-chain \
//     --sbom=true --provenance=mode=max -o type=oci,dest=app.tar
//   imagesmith inspect app.tar --attestations                 # both statements, summarized
//   imagesmith inspect app.tar --attestations --format json   # .statements[].predicate is the SPDX document grype reads
//   imagesmith build … --attest type=sbom --attest type=provenance,mode=min -t registry.example/app:1 --push
//
// The output becomes an image index: the image, then one attestation manifest (platform unknown/unknown)
// whose layers are in-toto statements about it. The SBOM lists the npm packages under node_modules and in
// the lockfile, and a base's dpkg/apk packages; the provenance names the base by digest (and in max mode
// the build args and every step with its cache key). The image's own digest does not change with them,
// and with no SOURCE_DATE_EPOCH its RUN layers are reproducible too (file times clamped to the epoch).
// From code: `build({ attest: { sbom: true, provenance: 'max' }, … })`.
// BASE_IMAGE names the base (busybox from Docker Hub by default; the tests use an offline archive).
import { image } from 'imagesmith'

export default image()
  .from(process.env['BASE_IMAGE'] ?? 'docker.io/library/busybox:1.36')
  .workdir('/app')
  .copy('app/', './')
  .run('date -u > built-at.txt')
  .cmd(['cat', '/app/index.js'])
