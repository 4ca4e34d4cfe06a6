// The edit-build loop: change one file, build again. Only what the change reaches is redone.
//
//   imagesmith build examples/edit-loop/build.ts --context examples/edit-loop -o type=oci,dest=app.tar --metadata-file m.json
//   imagesmith build …same…       # no-op: nothing runs, app.tar is left as it is (~0.2 s for 10k files)
//   echo "exports.greet = (n) => 'hi ' + n" > examples/edit-loop/app/src/greet.js
//   imagesmith build …same…       # COPY rebuilt: "1 context file changed: app/src/greet.js"; the RUN on top
//                                 # runs again; the layer is byte for byte what a cold build of these files makes
//
// Why it is fast: the context walk compares each file's stamp (inode, size, mtime, ctime) with the
// one its hash was taken under, and a walk with no change takes the step's key from one record; a
// COPY that did change re-gzips only the gzip members holding changed files and copies the rest
// from its previous layer, and hard-links unchanged files into the new snapshot the RUN reads.
// `--metadata-file` lists every step with `cached`, its time and, for a rebuilt one, the reason.
// BASE_IMAGE names the base (busybox from Docker Hub by default; the tests use an offline archive).
import { image } from 'imagesmith'

export default image()
  .from(process.env['BASE_IMAGE'] ?? 'docker.io/library/busybox:1.36')
  .workdir('/app')
  .copy('app/', '.')
  // Stands in for a build step over the sources (a bundler, a compiler): it reads every copied file.
  .run('find . -type f | sort | xargs cat | wc -c > /app/.source-bytes')
  .cmd(['cat', '/app/.source-bytes'])
