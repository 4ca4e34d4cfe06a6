// Built by a plain user, with no sudo and no daemon: as any user with a subordinate id range
// (a line for them in /etc/subuid and /etc/subgid, as `useradd` writes on Debian), run
//
//   imagesmith build examples/rootless/build.ts --context examples/rootless -o type=oci,dest=app.tar
//   podman load -i app.tar
//
// The RUN steps run in a user namespace where the user is root and the range gives the other ids,
// so the chown, COPY --chown and USER below record 2000 in the layers, as a root build does: the
// image digest is the same either way (builds are reproducible by default). The store is the user's
// (~/.cache/imagesmith). BASE_IMAGE picks the base (default busybox from its registry; offline,
// e.g. BASE_IMAGE=oci-archive:/path/to/busybox.tar).
import { image } from 'imagesmith'

export default image()
  .from(process.env.BASE_IMAGE ?? 'busybox')
  .run("echo 'svc:x:2000:2000::/srv:/bin/sh' >> /etc/passwd && echo 'svc:x:2000:' >> /etc/group && mkdir -p /srv/data && chown svc:svc /srv/data")
  .copy('app/', '/srv/app/', { chown: 'svc:svc', chmod: '755' })
  .user('svc')
  .run('echo "built by $(id -un) ($(id -u):$(id -g))" > /srv/data/built-by', { network: 'none' })
  .cmd(['/bin/sh', '/srv/app/start.sh'])
