#!/usr/bin/env bash
# hack/local-node/down.sh [--keep-plane]: tear the real node down and leave the host as up.sh found it.
#
# Cordons the node and deletes its pods while the kubelet still runs (so each sandbox is torn
# down through CNI), then stops the kubelet, kube-proxy (and runs its --cleanup), the scheduler,
# the forwarder and containerd by their recorded pids (each checked against its command line),
# kills what is left in the /kubepods cgroups and containerd's shims for this node's socket,
# unmounts and removes $STATE and $RUNDIR, the CNI network namespaces and the bridge it made,
# deletes the iptables rules and chains (KUBE-*, CNI-*) that were not there before up.sh, and
# restores the sysctls up.sh recorded. Then stops the plane ($PLANE/down.sh) unless --keep-plane.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/env.sh"

keep_plane=false
for a in "$@"; do
  case "$a" in
    --keep-plane) keep_plane=true ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) die "unknown argument $a (see --help)" ;;
  esac
done
[ "$(id -u)" = 0 ] || die "run as root"

stop() {   # stop NAME: SIGTERM to its recorded pid (if its command line matches), SIGKILL after 15 s
  local pid i
  pid=$(running_pid "$1")
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 1 30); do [ -d "/proc/$pid" ] || break; sleep 0.5; done
  [ -d "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null
  say "stopped $1 (pid $pid)"
}

# ---- pods, through the kubelet while it runs -------------------------------------------------------------
if [ -n "$(running_pid kubelet)" ] && kc get --raw /readyz >/dev/null 2>&1; then
  kc cordon "$NODE_NAME" >/dev/null 2>&1
  kc delete pods --all-namespaces --field-selector "spec.nodeName=$NODE_NAME" --grace-period=5 \
    --wait=true --timeout=60s >/dev/null 2>&1 && say "deleted the pods of $NODE_NAME"
fi
stop kubelet
# Whatever is left in the pods' cgroups (a pod the API never knew, a kubelet that died).
for h in /sys/fs/cgroup/*/kubepods; do
  [ -d "$h" ] || continue
  find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | xargs -r kill -KILL 2>/dev/null
done
for i in $(seq 1 10); do
  [ -n "$(find /sys/fs/cgroup/*/kubepods -name cgroup.procs -exec cat {} + 2>/dev/null)" ] || break
  sleep 0.5
done
for h in /sys/fs/cgroup/*/kubepods; do
  [ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} + 2>/dev/null
done
# containerd's shims for this node (they outlive containerd), matched by name and our socket.
for pid in $(pgrep -f "containerd-shim-runc-v2 -namespace k8s.io -address $CONTAINERD_SOCK"); do
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "containerd-shim" && kill -KILL "$pid" 2>/dev/null
done

if [ -n "$(running_pid kube-proxy)" ]; then
  stop kube-proxy
  if out=$("$BIN/kube-proxy" --cleanup 2>&1); then
    say "kube-proxy --cleanup done"
  else
    say "kube-proxy --cleanup failed ($(printf '%s\n' "$out" | grep -m1 -iE 'error|fail' | cut -c1-120)); what it left goes below"
  fi
fi
stop kube-scheduler
stop apiserver-forward
stop containerd

# ---- mounts, state, network namespaces, bridge --------------------------------------------------------
awk -v a="$STATE" -v b="$RUNDIR" '$2 ~ "^"a || $2 ~ "^"b || $2 ~ "^/run/netns/cni-" {print $2}' /proc/mounts \
  | sort -r | xargs -r -n1 umount -l 2>/dev/null
for ns in $(ip netns list 2>/dev/null | awk '/^cni-/{print $1}'); do
  grep -qx "$ns" "$STATE/netns.before" 2>/dev/null || ip netns delete "$ns" 2>/dev/null
done
if [ -f "$STATE/bridge.created" ] && ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link delete "$BRIDGE" && say "deleted bridge $BRIDGE"
fi

# ---- iptables: remove only what appeared since up.sh and belongs to the node -----------------------------
for ipt in iptables ip6tables; do
  [ -f "$STATE/$ipt.before" ] || continue
  python3 - "$ipt" "$STATE/$ipt.before" "$BRIDGE" "$POD_CIDR" <<'EOF'
import shlex, subprocess, sys
ipt, before_file, bridge, cidr = sys.argv[1:]
ours = ("KUBE-", "CNI-", bridge, cidr)
def parse(text):
    tables, table = {}, None
    for line in text.splitlines():
        if line.startswith("*"):
            table = tables.setdefault(line[1:], {"chains": set(), "rules": []})
        elif line.startswith(":") and table is not None:
            table["chains"].add(line[1:].split()[0])
        elif line.startswith("-A ") and table is not None:
            table["rules"].append(line)
    return tables
before = parse(open(before_file).read())
now = parse(subprocess.run([ipt + "-save"], capture_output=True, text=True).stdout)
removed = 0
for name, table in now.items():
    old = before.get(name, {"chains": set(), "rules": []})
    kept = list(old["rules"])
    for rule in table["rules"]:
        if rule in kept:
            kept.remove(rule)
        elif any(o in rule for o in ours):
            args = shlex.split(rule)
            subprocess.run([ipt, "-t", name, "-D"] + args[1:], capture_output=True)
            removed += 1
    new_chains = [c for c in table["chains"] - old["chains"] if c.startswith(("KUBE-", "CNI-"))]
    for c in new_chains:
        subprocess.run([ipt, "-t", name, "-F", c], capture_output=True)
    for c in new_chains:
        subprocess.run([ipt, "-t", name, "-X", c], capture_output=True)
        removed += 1
left = [l for l in subprocess.run([ipt + "-save"], capture_output=True, text=True).stdout.splitlines()
        if any(o in l for o in ours) and not l.startswith("#")]
print(f"local-node: {ipt}: removed {removed} rules and chains; left of ours: {len(left)}")
for l in left:
    print("  still there:", l)
EOF
done
if [ -f "$STATE/sysctl.before" ]; then
  while IFS='=' read -r k v; do sysctl -qw "$k=$v" 2>/dev/null; done <"$STATE/sysctl.before"
  say "sysctls restored: $(tr '\n' ' ' <"$STATE/sysctl.before")"
fi

if grep -q "# ferroscale-local-node$" /etc/hosts; then
  # in place (sed -i would replace the file, which may be a bind mount)
  hosts=$(grep -v "# ferroscale-local-node$" /etc/hosts); printf '%s\n' "$hosts" >/etc/hosts
fi
rm -rf "$RUNDIR"
if awk -v a="$STATE" '$2 ~ "^"a {f=1} END {exit !f}' /proc/mounts; then
  say "something is still mounted under $STATE; kept it"
else
  rm -rf "$STATE"
fi

if ! $keep_plane; then
  "$PLANE/down.sh"
fi
say "down"
