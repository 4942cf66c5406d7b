# Sourced by the hack/local-node scripts: names, addresses and paths of the real node.
# Every one can be overridden from the environment.
PLANE=${PLANE:-/opt/k8s128}                                # the v1.28 control plane
KUBECONFIG_ADMIN=${KUBECONFIG_ADMIN:-$PLANE/kubeconfig}
NODE_NAME=${NODE_NAME:-local-node}
STATE=${STATE:-/var/lib/ferroscale-local-node}             # containerd, kubelet, configs, records
RUNDIR=${RUNDIR:-/run/ferroscale-local-node}               # sockets, pids, logs
BRIDGE=${BRIDGE:-fsnode0}
POD_CIDR=${POD_CIDR:-10.244.0.0/24}
NODE_IP=${NODE_IP:-10.244.0.1}                             # the bridge's host address
APISERVER_FORWARD_PORT=${APISERVER_FORWARD_PORT:-6443}     # NODE_IP:6443 -> 127.0.0.1:7443
CONTAINERD_SOCK=$RUNDIR/containerd.sock
BIN=${BIN:-$PLANE/bin}                                     # kubelet, kube-scheduler, kube-proxy
K8S_SRC=${K8S_SRC:-/opt/k8s128-src}                        # for build/pause/linux/pause.c
PAUSE_IMAGE=${PAUSE_IMAGE:-registry.k8s.io/pause:3.9}
BURNER_IMAGE=${BURNER_IMAGE:-localhost/ferroscale-burner:local}
# The kube-controller-manager controllers: the plane's defaults, plus the publisher of the
# kube-root-ca.crt ConfigMap (every pod's service-account volume needs it) and EndpointSlices.
NODE_KCM_CONTROLLERS=${NODE_KCM_CONTROLLERS:-serviceaccount-token,serviceaccount,namespace,horizontalpodautoscaling,deployment,replicaset,garbagecollector,root-ca-cert-publisher,endpointslice}
# The components, as "name|pattern its /proc/PID/cmdline must contain".
COMPONENTS=(
  "apiserver-forward|socat TCP-LISTEN:$APISERVER_FORWARD_PORT,bind=$NODE_IP"
  "containerd|containerd --config $STATE/containerd.toml"
  "kube-scheduler|$BIN/kube-scheduler"
  "kube-proxy|$BIN/kube-proxy"
  "kubelet|$BIN/kubelet"
)
# The sysctls the kubelet, kube-proxy and the bridge plugin may change; down.sh restores them.
SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward
  net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables)

say() { echo "$(date +%H:%M:%S) local-node: $*"; }
die() { echo "$(date +%H:%M:%S) local-node: ERROR: $*" >&2; exit 1; }
pattern_of() { local c; for c in "${COMPONENTS[@]}"; do [ "${c%%|*}" = "$1" ] && echo "${c#*|}"; done; }
running_pid() {   # the pid of a running component, or nothing
  local pid
  pid=$(cat "$RUNDIR/$1.pid" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] || return 0
  if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$(pattern_of "$1")"; then echo "$pid"; fi
}
kc() { kubectl --kubeconfig="$KUBECONFIG_ADMIN" --request-timeout=20s "$@"; }
ctr_() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }
