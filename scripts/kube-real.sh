#!/usr/bin/env bash
# A real Kubernetes control plane of DV 1.5.0's era for dvdoctor's real test tier.
#
#   scripts/kube-real.sh build   build kube-apiserver, kube-controller-manager and kube-scheduler
#                                from Debian 12's `kubernetes` source package (1.20.2, Go deps
#                                vendored) into $KUBE_REAL_CACHE/bin (default .cache/kube)
#   scripts/kube-real.sh up      start etcd + the three on 127.0.0.1 (free ports, TLS, a token file,
#                                RBAC, the PV binder); write $KUBE_REAL_RUN/kubeconfig and env
#                                (default .cache/kube-run: its own folder, apart from the build)
#   scripts/kube-real.sh down    stop exactly the processes `up` started (by their pid files) and
#                                remove the run's secrets (tokens, keys, kubeconfigs) and etcd data;
#                                exit 1 when there is no run where it looks
#   scripts/kube-real.sh can-build   exit 0 when `build` can work here (root, Debian, apt); else print why
#
# Why from source: no prebuilt binary may be downloaded here; Debian's source package and Go
# toolchain are the only way to a real API server, and 1.20 is the closest release Debian carries to
# OpenShift 4.5/4.6 (Kubernetes 1.18/1.19). The system's apt sources are never changed: the deb-src
# entry, the package lists and the apt cache live in a private folder under the cache.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${KUBE_REAL_CACHE:-$ROOT/.cache/kube}"
# The run (tokens, keys, etcd data) lives apart from the build cache, which is kept between runs.
DEFAULT_RUN="$ROOT/.cache/kube-run"
RUN="${KUBE_REAL_RUN:-$DEFAULT_RUN}"
BIN="$CACHE/bin"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler)
SRC_PKG=kubernetes

say() { printf '[kube-real %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

can_build() {
    if [[ $(id -u) != 0 ]]; then echo "not root: apt-get install/source need root"; return 1; fi
    if ! command -v apt-get >/dev/null; then echo "no apt-get: not a Debian machine"; return 1; fi
    if ! grep -qs 'VERSION_CODENAME=bookworm' /etc/os-release; then
        echo "not Debian 12 (bookworm): its kubernetes 1.20.2 source package is what gets built"; return 1
    fi
    return 0
}

built() {
    local b
    for b in "${BINARIES[@]}"; do [[ -x $BIN/$b ]] || return 1; done
}

# apt with a private source list, package lists and cache: the system's configuration stays as it is.
private_apt() {
    local apt="$CACHE/apt"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/sources.list.d"
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    printf 'deb-src [signed-by=%s] http://deb.debian.org/debian bookworm main\n' "$keyring" \
        > "$apt/sources.list"
    apt-get -o Dir::Etc::SourceList="$apt/sources.list" \
            -o Dir::Etc::SourceParts="$apt/sources.list.d" \
            -o Dir::State::Lists="$apt/lists" \
            -o Dir::Cache="$apt/cache" \
            -o APT::Sandbox::User=root "$@"
}

build() {
    local why
    why=$(can_build) || die "cannot build here: $why"
    mkdir -p "$CACHE" "$BIN"
    local missing=()
    command -v go >/dev/null || missing+=(golang-go)
    command -v etcd >/dev/null || missing+=(etcd-server)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v dpkg-source >/dev/null || missing+=(dpkg-dev)
    command -v rsync >/dev/null || missing+=(rsync)
    command -v curl >/dev/null || missing+=(curl)
    if ((${#missing[@]})); then
        say "installing ${missing[*]} (apt-get)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if built; then say "binaries already built in $BIN"; return 0; fi
    local src
    src=$(find "$CACHE/src" -maxdepth 1 -type d -name "$SRC_PKG-*" 2>/dev/null | head -1 || true)
    if [[ -z $src ]]; then
        say "fetching Debian's $SRC_PKG source package (private apt lists in $CACHE/apt)"
        private_apt -qq update
        mkdir -p "$CACHE/src"
        (cd "$CACHE/src" && private_apt -qq source "$SRC_PKG" >/dev/null)
        src=$(find "$CACHE/src" -maxdepth 1 -type d -name "$SRC_PKG-*" | head -1)
        [[ -n $src ]] || die "apt-get source $SRC_PKG unpacked nothing"
    fi
    say "source: $src ($(go version))"
    local what="" b
    for b in "${BINARIES[@]}"; do what+="cmd/$b "; done
    say "building ${BINARIES[*]} (about 5 minutes on 2 cores, 1.4 GB peak; GOMAXPROCS=2, nice)"
    local t0=$SECONDS log="$CACHE/build.log"
    (
        cd "$src"
        export GOFLAGS="-mod=vendor" GOPROXY=off CGO_ENABLED=0 GOMAXPROCS=2 GO111MODULE=on GOCACHE="$CACHE/gocache" \
               KUBE_GIT_VERSION="v1.20.2" KUBE_GIT_TREE_STATE=clean KUBE_BUILD_PLATFORMS=linux/amd64 \
               KUBE_VERBOSE=2
        nice -n 10 make WHAT="${what% }"
    ) >"$log" 2>&1 &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 30
        kill -0 "$pid" 2>/dev/null || break
        say "still building: $((SECONDS - t0)) s of about 300 ($(grep -c . "$log") log lines in $log)"
    done
    wait "$pid" || { tail -n 40 "$log" >&2; die "build failed (log: $log)"; }
    for b in "${BINARIES[@]}"; do
        local out
        out=$(find "$src/_output" -type f -name "$b" -perm -u+x | head -1)
        [[ -n $out ]] || die "build finished but $b is missing (log: $log)"
        install -m 0755 "$out" "$BIN/$b"
    done
    say "built in $((SECONDS - t0)) s: $("$BIN/kube-apiserver" --version)"
}


# N distinct free ports, each taken by a bind until all are found, from below the kernel's ephemeral
# range (32768 and up here): a port the kernel handed out by bind(0) and released was free for anyone,
# the next bind(0) of this very script included, so two of the plane's ports could be one (etcd or the
# API server then exits at once) or be taken meanwhile by one of the tests' own servers.
free_ports() {
    python3 -c '
import random, socket, sys
held = []
while len(held) < int(sys.argv[1]):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", random.randrange(20000, 32000)))
    except OSError:
        s.close()
        continue
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
' "$1"
}

# Start one process in the background, its output in RUN/logs/NAME.log, its pid in RUN/pids/NAME.pid.
start() {
    local name=$1; shift
    nohup "$@" >"$RUN/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$RUN/pids/$name.pid"
}

certs() {
    local d=$RUN/pki
    mkdir -p "$d" && chmod 0700 "$d"
    # P-256 keys for the CA and the serving certificate: every TLS handshake (each dvdoctor run opens
    # its own connections) signs with the serving key, a sixth of the server's CPU in the real tier with
    # RSA-2048; ECDSA signs in a fraction of that, and the keys are made at once
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=kube-real-ca" \
        -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=kube-apiserver" \
        -keyout "$d/apiserver.key" -out "$d/apiserver.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n' >"$d/san.ext"
    openssl x509 -req -in "$d/apiserver.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -days 2 -extfile "$d/san.ext" -out "$d/apiserver.crt" 2>/dev/null
    openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
    openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
}

kubeconfig() {  # file user token
    local file=$1 user=$2 token=$3
    (umask 077; cat >"$file" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: kube-real
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $RUN/pki/ca.crt
users:
- name: $user
  user:
    token: $token
contexts:
- name: kube-real
  context: {cluster: kube-real, user: $user, namespace: default}
current-context: kube-real
KUBECONFIG
)
}

token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# The exact command that stops this run, pasteable as it is (the run folder named when not the default).
stop_command() {
    local cmd
    cmd="$(printf '%q ' bash "$ROOT/scripts/kube-real.sh")down"
    if [[ $RUN != "$DEFAULT_RUN" ]]; then cmd="KUBE_REAL_RUN=$(printf '%q' "$RUN") $cmd"; fi
    printf '%s\n' "$cmd"
}

up() {
    built || die "not built: run $0 build first"
    command -v etcd >/dev/null || die "etcd is missing (apt-get install etcd-server)"
    [[ ! -e $RUN/pids ]] || die "already up in $RUN (stop it first: $(stop_command))"
    mkdir -p "$RUN/pids" "$RUN/logs" && chmod 0700 "$RUN"
    certs
    read -r ETCD_PORT PEER_PORT API_PORT < <(free_ports 3)
    local admin_token cm_token sched_token
    admin_token=$(token); cm_token=$(token); sched_token=$(token)
    (umask 077; printf '%s,admin,admin,system:masters\n%s,system:kube-controller-manager,kcm\n%s,system:kube-scheduler,ks\n' \
        "$admin_token" "$cm_token" "$sched_token" >"$RUN/tokens.csv")
    kubeconfig "$RUN/kubeconfig" admin "$admin_token"
    kubeconfig "$RUN/controller-manager.kubeconfig" system:kube-controller-manager "$cm_token"
    kubeconfig "$RUN/scheduler.kubeconfig" system:kube-scheduler "$sched_token"
    say "starting etcd on 127.0.0.1:$ETCD_PORT"
    start etcd etcd --name kube-real --data-dir "$RUN/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
        --initial-cluster "kube-real=http://127.0.0.1:$PEER_PORT"
    say "starting kube-apiserver on https://127.0.0.1:$API_PORT (RBAC, token file, TLS)"
    # API Priority and Fairness off, as on DV's platforms: an alpha feature, off, in Kubernetes 1.18
    # and 1.19 (OpenShift 4.5/4.6), absent in 1.11 (3.11); 1.20 turned it on. Its filter cost this
    # plane 1.4 of its 11 CPU-seconds in a suite run (session 21). Server-side apply stays on (beta,
    # on since 1.16): the objects dvdoctor reads carry managedFields, as OpenShift 4.5/4.6 serves them.
    start kube-apiserver "$BIN/kube-apiserver" \
        --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
        --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" --insecure-port 0 \
        --tls-cert-file "$RUN/pki/apiserver.crt" --tls-private-key-file "$RUN/pki/apiserver.key" \
        --client-ca-file "$RUN/pki/ca.crt" --token-auth-file "$RUN/tokens.csv" \
        --authorization-mode RBAC --anonymous-auth=false \
        --service-account-key-file "$RUN/pki/sa.pub" --service-account-signing-key-file "$RUN/pki/sa.key" \
        --service-account-issuer https://kubernetes.default.svc --service-cluster-ip-range 10.0.0.0/24 \
        --endpoint-reconciler-type none --enable-priority-and-fairness=false
    local i
    for i in $(seq 1 120); do
        if curl -sf --cacert "$RUN/pki/ca.crt" -H "Authorization: Bearer $admin_token" \
                "https://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1; then
            break
        fi
        if ! running "$(cat "$RUN/pids/kube-apiserver.pid")"; then
            tail -n 20 "$RUN/logs/kube-apiserver.log" >&2; down; die "kube-apiserver exited"
        fi
        sleep 0.5
    done
    ((i < 120)) || { tail -n 20 "$RUN/logs/kube-apiserver.log" >&2; down; die "kube-apiserver not ready in 60 s"; }
    say "kube-apiserver ready after $((i / 2)) s; starting kube-controller-manager (PV binder, jobs, tokens) and kube-scheduler"
    start kube-controller-manager "$BIN/kube-controller-manager" \
        --kubeconfig "$RUN/controller-manager.kubeconfig" --leader-elect=false --port 0 --secure-port 0 \
        --service-account-private-key-file "$RUN/pki/sa.key" --root-ca-file "$RUN/pki/ca.crt" \
        --use-service-account-credentials=true --controllers '*'
    start kube-scheduler "$BIN/kube-scheduler" \
        --kubeconfig "$RUN/scheduler.kubeconfig" --leader-elect=false --port 0 --secure-port 0
    printf 'KUBECONFIG=%s\nKUBE_REAL_SERVER=https://127.0.0.1:%s\n' "$RUN/kubeconfig" "$API_PORT" >"$RUN/env"
    say "up: KUBECONFIG=$RUN/kubeconfig"
    say "stop with: $(stop_command)"
}

# Still running: an exited process nobody has reaped yet (a zombie: its parent is gone, and in some
# containers pid 1 reaps late) has stopped, though `kill -0` still finds it.
running() {
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $st && ${st%% *} != Z ]]
}

# Stop exactly what `up` started: the pids in RUN/pids, each only if it still runs the binary we started.
down() {
    if [[ ! -d $RUN/pids ]]; then
        say "nothing to stop: no run in $RUN (looked for $RUN/pids; KUBE_REAL_RUN=DIR names the run \`up\` printed)"
        return 1
    fi
    local f pid name
    for name in kube-scheduler kube-controller-manager kube-apiserver etcd; do
        f=$RUN/pids/$name.pid
        [[ -f $f ]] || continue
        pid=$(cat "$f")
        if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$name"; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do running "$pid" || break; sleep 0.1; done
            running "$pid" && kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$f"
    done
    rmdir "$RUN/pids" 2>/dev/null || true
    # the run's secrets go with it: the token file, the private keys, the kubeconfigs holding tokens,
    # and etcd's data (which holds the service account tokens); the logs stay for a post-mortem
    rm -rf "$RUN/etcd" "$RUN/pki"
    rm -f "$RUN/tokens.csv" "$RUN/kubeconfig" "$RUN/controller-manager.kubeconfig" "$RUN/scheduler.kubeconfig" "$RUN/env"
    say "down: stopped what $RUN/pids named; removed its tokens, keys, kubeconfigs and etcd data (logs kept in $RUN/logs)"
}

case "${1:-}" in
    build) build ;;
    up) up ;;
    down) down || exit 1 ;;
    can-build) can_build ;;
    *) echo "usage: $0 build|up|down|can-build" >&2; exit 2 ;;
esac
