#!/usr/bin/env bash
# hack/local-node/up.sh [--keep-plane]: a real node, $NODE_NAME, for the v1.28 plane in $PLANE.
#
# Starts the plane afresh (/opt/k8s128/up.sh --clean, with the kube-root-ca.crt publisher and the
# EndpointSlice controller added to its controllers; --keep-plane uses the running plane as it
# is), then, on the host, as root:
#   containerd        Debian's, private config/root/socket under $STATE and $RUNDIR, runc,
#                     CNI bridge $BRIDGE ($POD_CIDR, host address $NODE_IP), local images imported
#   apiserver-forward socat $NODE_IP:$APISERVER_FORWARD_PORT -> 127.0.0.1:7443, the endpoint of
#                     the `kubernetes` Service (the plane's API server listens on loopback only)
#   kube-scheduler, kube-proxy (iptables mode), kubelet (cgroupfs) from $BIN
# and waits until the Node is Ready. Records iptables rules and sysctls first: down.sh removes
# only what appeared since and restores the sysctls. Logs and pids: $RUNDIR/logs, $RUNDIR/*.pid.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/env.sh"
cd "$HERE/../.."
T0=$SECONDS

keep_plane=false
for a in "$@"; do
  case "$a" in
    --keep-plane) keep_plane=true ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) die "unknown argument $a (see --help)" ;;
  esac
done

[ "$(id -u)" = 0 ] || die "run as root"
for c in containerd ctr runc socat iptables iptables-save kubectl buildah gcc; do
  command -v "$c" >/dev/null || die "$c not found (see hack/local-node/README.md)"
done
for p in bridge host-local loopback; do [ -x "/usr/lib/cni/$p" ] || die "/usr/lib/cni/$p not found (apt-get install containernetworking-plugins)"; done
for b in kubelet kube-scheduler kube-proxy; do [ -x "$BIN/$b" ] || die "$BIN/$b not found"; done
for c in "${COMPONENTS[@]}"; do
  [ -z "$(running_pid "${c%%|*}")" ] || die "${c%%|*} is already running: hack/local-node/down.sh first"
done

# ---- the plane --------------------------------------------------------------------------------------
if ! $keep_plane; then
  say "starting the plane afresh ($PLANE/up.sh --clean)"
  KCM_CONTROLLERS=$NODE_KCM_CONTROLLERS "$PLANE/up.sh" --clean || KCM_CONTROLLERS=$NODE_KCM_CONTROLLERS "$PLANE/up.sh"
fi
kc get --raw /readyz >/dev/null || die "the plane's API server is not ready"

# ---- records for down.sh (kept from an earlier run that was not torn down) -------------------------
mkdir -p "$STATE" "$RUNDIR/logs"
if [ ! -f "$STATE/iptables.before" ]; then
  iptables-save >"$STATE/iptables.before"
  ip6tables-save >"$STATE/ip6tables.before" 2>/dev/null || true
  ip netns list 2>/dev/null | awk '{print $1}' >"$STATE/netns.before"
  for s in "${SYSCTLS[@]}"; do
    v=$(sysctl -n "$s" 2>/dev/null) && echo "$s=$v"
  done >"$STATE/sysctl.before"
fi

# ---- network: the bridge (the bridge plugin would make it at the first pod; the kubelet and the
# forwarder need its address before that) --------------------------------------------------------------
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link add "$BRIDGE" type bridge
  touch "$STATE/bridge.created"
fi
ip addr replace "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
ip link set "$BRIDGE" up

# The API server reaches the kubelet (logs, exec) by the Node's hostname address first: make the
# name resolve, with one marked line in /etc/hosts that down.sh removes.
grep -q "# ferroscale-local-node$" /etc/hosts || echo "$NODE_IP $NODE_NAME # ferroscale-local-node" >>/etc/hosts

# ---- configuration -----------------------------------------------------------------------------------
mkdir -p "$STATE/cni" "$STATE/kubelet"
cat >"$STATE/cni/10-$BRIDGE.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "$BRIDGE", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$STATE/ipam",
            "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]], "routes": [{"dst": "0.0.0.0/0"}]}}]}
EOF
cat >"$STATE/containerd.toml" <<EOF
version = 2
root = "$STATE/containerd"
state = "$RUNDIR/containerd"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # no CAP_SYS_RESOURCE here: runc cannot lower an OOM score, and every sandbox would fail
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni"
EOF
cat >"$STATE/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
oomScoreAdj: 0
protectKernelDefaults: false
failSwapOn: false
resolvConf: /etc/resolv.conf
# A development node: the API server (logs, exec) and Prometheus (/metrics/resource) reach the
# kubelet without credentials, on the bridge address only.
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
EOF
cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $KUBECONFIG_ADMIN}
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10356
metricsBindAddress: 127.0.0.1:10349
iptables: {localhostNodePorts: false}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF

start() {   # start NAME CMD...: own session, output to its log, pid recorded
  local name=$1; shift
  echo "===== $(date -Is) up.sh: $*" >>"$RUNDIR/logs/$name.log"
  setsid "$@" >>"$RUNDIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$RUNDIR/$name.pid"
  say "started $name (pid $!, log $RUNDIR/logs/$name.log)"
}
wait_until() {   # wait_until SECONDS WHAT CMD...
  local end=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || die "timed out waiting for $what"
    sleep 0.5
  done
}

# ---- containerd and the images -----------------------------------------------------------------------
start containerd containerd --config "$STATE/containerd.toml"
wait_until 30 containerd ctr_ version
[ -f target/local-node/pause.oci.tar ] && [ -f target/local-node/burner.oci.tar ] || "$HERE/images.sh"
for archive in target/local-node/pause.oci.tar target/local-node/burner.oci.tar target/image/ferroscale-*.oci.tar; do
  [ -f "$archive" ] || continue
  ctr_ images import "$archive" >/dev/null
  say "imported $archive"
done

# ---- the API server for pods: NODE_IP:6443, the endpoint of the `kubernetes` Service -----------------
start apiserver-forward socat "TCP-LISTEN:$APISERVER_FORWARD_PORT,bind=$NODE_IP,fork,reuseaddr" TCP:127.0.0.1:7443
kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Endpoints
metadata: {name: kubernetes, namespace: default}
subsets: [{addresses: [{ip: $NODE_IP}], ports: [{name: https, port: $APISERVER_FORWARD_PORT, protocol: TCP}]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: kubernetes, namespace: default, labels: {kubernetes.io/service-name: kubernetes}}
addressType: IPv4
endpoints: [{addresses: [$NODE_IP], conditions: {ready: true}}]
ports: [{name: https, port: $APISERVER_FORWARD_PORT, protocol: TCP}]
EOF

# ---- scheduler, proxy, kubelet -------------------------------------------------------------------------
start kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$KUBECONFIG_ADMIN" \
  --authentication-kubeconfig="$KUBECONFIG_ADMIN" --authorization-kubeconfig="$KUBECONFIG_ADMIN" \
  --bind-address=127.0.0.1 --secure-port=10359 --leader-elect=false
start kube-proxy "$BIN/kube-proxy" --config="$STATE/kube-proxy.yaml"
start kubelet "$BIN/kubelet" --config="$STATE/kubelet/config.yaml" --kubeconfig="$KUBECONFIG_ADMIN" \
  --root-dir="$STATE/kubelet/root" --cert-dir="$STATE/kubelet/pki" \
  --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1

node_ready() {
  [ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
wait_until 120 "node $NODE_NAME Ready (see $RUNDIR/logs/kubelet.log)" node_ready
# The kubelet registers with the not-ready taint; the plane runs no node-lifecycle controller to
# lift it once the node is Ready, so this does.
kc taint node "$NODE_NAME" node.kubernetes.io/not-ready:NoSchedule- >/dev/null 2>&1 || true
say "node $NODE_NAME Ready after $((SECONDS - T0)) s; pods with nodeSelector kubernetes.io/hostname=$NODE_NAME run here"
