/* How the launcher finds a container's shim group and the group's socket address. */
#ifndef SHOAL_LAUNCHER_GROUP_H
#define SHOAL_LAUNCHER_GROUP_H

#include <stddef.h>

/*
 * The shim group named by config.json's annotations: `io.containerd.runc.v2.group`, then
 * `io.kubernetes.cri.sandbox-id`. Returns a malloc'd string, or NULL when neither is set (the
 * caller then groups by container id) or the JSON is malformed.
 */
char *spec_group_id(const char *json, size_t len);

/*
 * Go's filepath.Clean of path into out (at most outsz bytes): duplicate slashes, "." and ".."
 * elements resolved, no trailing slash. Returns 0, or -1 when it does not fit.
 */
int clean_path(const char *path, char *out, size_t outsz);

/*
 * The shim socket path `/run/containerd/s/<hex sha256(Join(address, ns, group))>` into out.
 * Returns 0, or -1 when it does not fit.
 */
int socket_path(const char *address, const char *ns, const char *group, char *out, size_t outsz);

#endif
