#!/usr/bin/env bash
# Usage: dind-entrypoint.sh [DOCKERD-ARGUMENT...]
# Makes the container fit to run an engine, then becomes dockerd, listening on the unix socket
# and, without TLS, on tcp://0.0.0.0:2375 (a harness on a private network only), with the
# arguments given appended.
# Without --privileged (which these machines refuse) a container gets /sys/fs/cgroup and
# /proc/sys read-only, even with CAP_SYS_ADMIN: on a cgroup v1 host the inner engine's containers
# then fail on /sys/fs/cgroup/cpuset, and engine 26 fails every container on the sysctls it sets in
# their network namespaces (disable_ipv6). With a private cgroup namespace each hierarchy can be
# mounted again, writable, at the same place; /proc/sys is remounted writable. Cgroup v1 only:
# a cgroup v2 host is not handled (these machines are v1). A stopped and started container is a
# rebooted machine: the engine's state in the /var/lib/docker volume stays, its /run does not.
set -Eeuo pipefail

me=${0##*/}
die() { printf '%s: error: %s\n' "$me" "$*" >&2; exit 1; }

# Each cgroup v1 hierarchy under /sys/fs/cgroup, mounted again writable with the same controllers.
remount_cgroups_v1() {
  local source target type options rest option controllers
  local -a fields
  while read -r source target type options rest; do
    [ "$type" = cgroup ] || continue
    controllers=
    IFS=, read -ra fields <<<"$options"
    for option in "${fields[@]}"; do
      case $option in
        rw | ro | nosuid | nodev | noexec | relatime | noatime | clone_children | xattr) ;;
        *) controllers+=${controllers:+,}$option ;;
      esac
    done
    umount -l "$target"
    mount -t cgroup -o "$controllers" "$source" "$target"
  done < <(grep ' /sys/fs/cgroup/' /proc/self/mounts)
}

mount -o remount,rw,bind /proc/sys 2>/dev/null \
  || die "cannot remount /proc/sys: run with the capabilities .ci/swarm.sh gives a node (CAP_SYS_ADMIN, --cgroupns=private, seccomp and apparmor unconfined)"
if grep -q ' /sys/fs/cgroup tmpfs ' /proc/self/mounts; then
  mount -o remount,rw /sys/fs/cgroup
  remount_cgroups_v1
fi
# A container's start is a machine's boot: what the engine left in /run last time is stale (its
# pid file names PID 1, which is this process now, and dockerd would refuse to start).
rm -rf /run/docker.pid /run/docker /run/containerd
# Inner containers' mounts may propagate (as docker:dind's own script does).
mount --make-rshared /

exec dockerd --host=unix:///var/run/docker.sock --host=tcp://0.0.0.0:2375 --tls=false "$@"
