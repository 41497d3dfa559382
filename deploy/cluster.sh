#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A local shoal cluster for development: a private redis-server, N shoal-nodes and M
# shoal-gateways as plain processes on loopback (no containers).
#
#   deploy/cluster.sh up     [--nodes N] [--gateways M] [options]   start what is not running
#   deploy/cluster.sh status [--state-dir DIR]                      alive / ready, per process
#   deploy/cluster.sh down   [--state-dir DIR]                      stop everything by PID
#
# State (the options `up` was given, pid files, logs, the shared connection-id secret) lives in
# the state dir, build/cluster/ by default, so `status` and `down` need no other option. `up` is
# idempotent: it starts only the processes whose pid file is missing or names a process that is
# gone, then waits (bounded) until every admin /readyz answers 200. `down` stops the gateways,
# then the nodes (SIGTERM: a node hands its partitions over), then Redis, each by the PID in its
# pid file (checked against the binary it should be running), waiting a bounded time for each.
# Nothing is ever stopped by name.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: deploy/cluster.sh up|down|status [options]

  --nodes N            shoal-node processes (default 3): ids n1..nN, ZeroMQ on
                       tcp://HOST:NODE_PORT+(i-1)*WORKERS (a port per worker: worker w at +w),
                       admin on HOST:NODE_PORT+i-1+1000
  --gateways M         shoal-gateway processes (default 2): gateway i serves UDP and HTTP on
                       127.0.0.i:PORT (an address each, as DNS round robin hands them out),
                       admin on HOST:ADMIN_PORT+i-1
  --gateway-addrs A,B  the gateways' addresses instead of 127.0.0.1, 127.0.0.2, ...
  --host ADDR          address Redis, the nodes and the admin listeners bind (default 127.0.0.1)
  --port P             the gateways' UDP+HTTP port (default 6969)
  --node-port P        the first node's ZeroMQ port (default 7001)
  --admin-port P       the first gateway's admin port (default 6971)
  --redis-port P       the private redis-server's port (default 6380, off Debian's 6379)
  --redis URL          use this Redis instead of starting one (it is never stopped)
  --cluster NAME       the deployment's name, the prefix of its Redis keys (default shoal)
  --workers N          worker threads per gateway and per node (default 1); each node worker
                       listens on a port of its own, so nodes are WORKERS ports apart
  --build-dir DIR      take the binaries from DIR/cmd; built there (Release) if any is missing
                       (default build/release)
  --state-dir DIR      pid files, logs and the secret (default build/cluster)
  --timeout S          how long `up` waits for readiness and `down` for each stop (default 30)
  --no-deps            do not run deploy/install-deps.sh cluster
  --gateway-arg ARG    one more argument for every gateway (repeatable)
  --node-arg ARG       one more argument for every node (repeatable)

Paths are relative to the repository root.
EOF
}

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

cmd=${1:-}
case "$cmd" in
up | down | status) shift ;;
-h | --help)
    usage
    exit 0
    ;;
*)
    usage >&2
    exit 2
    ;;
esac

# Defaults, then what the state dir recorded (status/down, or `up` again), then the flags.
state_dir=build/cluster
for ((i = 1; i <= $#; i++)); do
    if [ "${!i}" = --state-dir ]; then
        j=$((i + 1))
        state_dir=${!j:?--state-dir needs a value}
    fi
done
mkdir -p "$state_dir"
state_dir=$(cd "$state_dir" && pwd)
conf="$state_dir/cluster.conf"

nodes=3 gateways=2 gateway_addrs="" host=127.0.0.1 port=6969 node_port=7001 admin_port=6971 redis_port=6380
redis_ext="" cluster=shoal workers=1 build_dir=build/release timeout=30 deps=1
gateway_args=() node_args=()
# shellcheck disable=SC1090
[ -f "$conf" ] && . "$conf"
recorded=""
[ -f "$conf" ] && recorded=$(cat "$conf")
given=0
gateway_args_given=() node_args_given=()
while [ $# -gt 0 ]; do
    opt=$1
    case "$opt" in
    --no-deps) deps=0; shift; continue ;;
    -h | --help) usage; exit 0 ;;
    esac
    [ $# -ge 2 ] || { echo "cluster.sh: $opt needs a value" >&2; exit 2; }
    val=$2
    shift 2
    case "$opt" in
    --state-dir) continue ;;
    --nodes) nodes=$val ;;
    --gateways) gateways=$val ;;
    --gateway-addrs) gateway_addrs=$val ;;
    --host) host=$val ;;
    --port) port=$val ;;
    --node-port) node_port=$val ;;
    --admin-port) admin_port=$val ;;
    --redis-port) redis_port=$val ;;
    --redis) redis_ext=$val ;;
    --cluster) cluster=$val ;;
    --workers) workers=$val ;;
    --build-dir) build_dir=$val ;;
    --timeout) timeout=$val ;;
    --gateway-arg) gateway_args_given+=("$val") ;;
    --node-arg) node_args_given+=("$val") ;;
    *) echo "cluster.sh: unknown option $opt (--help lists them)" >&2; exit 2 ;;
    esac
    given=1
done
[ ${#gateway_args_given[@]} -gt 0 ] && gateway_args=("${gateway_args_given[@]}")
[ ${#node_args_given[@]} -gt 0 ] && node_args=("${node_args_given[@]}")
for v in nodes gateways port node_port admin_port redis_port workers timeout; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "cluster.sh: --${v//_/-} must be a number" >&2; exit 2; }
done
if [ "$nodes" -lt 1 ] || [ "$gateways" -lt 1 ] || [ "$gateways" -gt 254 ]; then
    echo "cluster.sh: need 1 or more nodes and 1 to 254 gateways" >&2
    exit 2
fi
if [ -n "$gateway_addrs" ] && [ "$(tr ',' '\n' <<<"$gateway_addrs" | grep -c .)" -lt "$gateways" ]; then
    echo "cluster.sh: --gateway-addrs names fewer addresses than --gateways" >&2
    exit 2
fi
case "$build_dir" in /*) ;; *) build_dir="$root/$build_dir" ;; esac
bin="$build_dir/cmd"
# A Redis of the user's (--redis URL) is used as it is and never started or stopped here.
redis_url=${redis_ext:-redis://$host:$redis_port}
own_redis=1
[ -z "$redis_ext" ] || own_redis=0
secret_file="$state_dir/secret"

save_conf() {
    {
        printf 'nodes=%q gateways=%q gateway_addrs=%q host=%q port=%q node_port=%q admin_port=%q\n' \
            "$nodes" "$gateways" "$gateway_addrs" "$host" "$port" "$node_port" "$admin_port"
        printf 'redis_port=%q redis_ext=%q cluster=%q workers=%q build_dir=%q timeout=%q\n' \
            "$redis_port" "$redis_ext" "$cluster" "$workers" "$build_dir" "$timeout"
        printf 'gateway_args=('
        [ ${#gateway_args[@]} -eq 0 ] || printf '%q ' "${gateway_args[@]}"
        printf ')\nnode_args=('
        [ ${#node_args[@]} -eq 0 ] || printf '%q ' "${node_args[@]}"
        printf ')\n'
    } >"$conf.tmp"
    mv "$conf.tmp" "$conf"
}

# ---- processes: NAME -> pid file, log, expected binary, admin port ----

names() {
    [ "$own_redis" = 1 ] && echo redis
    for ((i = 1; i <= nodes; i++)); do echo "node-n$i"; done
    for ((i = 1; i <= gateways; i++)); do echo "gateway-$i"; done
}

exe_of() {
    case "$1" in
    redis) command -v redis-server || echo redis-server ;;
    node-*) echo "$bin/shoal-node" ;;
    gateway-*) echo "$bin/shoal-gateway" ;;
    esac
}

index_of() { local n=${1##*-}; echo "${n#n}"; }

# The real paths of the binaries, which /proc/PID/exe names.
real_path() { readlink -f "$1" 2>/dev/null || echo "$1"; }
set_real_paths() {
    real_redis=$(real_path "$(exe_of redis)")
    real_node=$(real_path "$bin/shoal-node")
    real_gateway=$(real_path "$bin/shoal-gateway")
}

# Gateway i's listen address: the i-th of --gateway-addrs, else 127.0.0.i.
gateway_addr() {
    local addrs
    if [ -n "$gateway_addrs" ]; then
        IFS=, read -r -a addrs <<<"$gateway_addrs"
        echo "${addrs[$1 - 1]}"
    else
        echo "127.0.0.$1"
    fi
}

# Node i's first ZeroMQ port; its worker w listens on this + w.
node_port_of() {
    echo $((node_port + ($1 - 1) * workers))
}

admin_of() {
    case "$1" in
    node-*) echo "$host:$((node_port + $(index_of "$1") - 1 + 1000))" ;;
    gateway-*) echo "$host:$((admin_port + $(index_of "$1") - 1))" ;;
    esac
}

# The PID in NAME's pid file if that process is alive and runs the expected binary (a pid file
# whose process is gone, or whose PID now belongs to something else, is stale). A binary rebuilt
# under a running process shows as "PATH (deleted)": still ours.
live_pid() {
    local f="$state_dir/$1.pid" pid exe want
    [ -f "$f" ] || return 1
    read -r pid <"$f" 2>/dev/null || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    running "$pid" || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    case "$1" in
    redis) want=$real_redis ;;
    node-*) want=$real_node ;;
    gateway-*) want=$real_gateway ;;
    esac
    [ "${exe% (deleted)}" = "$want" ] || return 1
    echo "$pid"
}

# True while PID runs: not gone and not a zombie (our processes are re-parented to init, which
# may reap them late, and kill -0 succeeds on a zombie).
running() {
    local stat
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# HTTP status of GET http://ADDR:PORT/PATH (000 if nothing answers), with bash's /dev/tcp and a
# bound of 2 s, so neither curl nor wget is needed.
http_status() {
    local hp=$1 path=$2
    timeout 2 bash -c '
        exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || exit 1
        printf "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" "$2" "$1" >&3
        read -r _ code _ <&3 && echo "$code"' _ "$hp" "$path" 2>/dev/null || echo 000
}

ready() {
    case "$1" in
    redis) [ "$(timeout 2 redis-cli -h "$host" -p "$redis_port" ping 2>/dev/null)" = PONG ] ;;
    *) [ "$(http_status "$(admin_of "$1")" /readyz)" = 200 ] ;;
    esac
}

argv_of() {
    local i
    case "$1" in
    redis)
        argv=("$(exe_of redis)" --port "$redis_port" --bind "$host" --save "" --appendonly no
              --dir "$state_dir/redis" --protected-mode no --loglevel warning) ;;
    node-*)
        i=$(index_of "$1")
        argv=("$bin/shoal-node" --id "n$i" --bind "tcp://$host:$(node_port_of "$i")"
              --redis "$redis_url" --cluster "$cluster" --workers "$workers"
              --admin "$(admin_of "$1")" ${node_args[@]+"${node_args[@]}"}) ;;
    gateway-*)
        i=$(index_of "$1")
        argv=("$bin/shoal-gateway" --redis "$redis_url" --cluster "$cluster"
              --udp "$(gateway_addr "$i"):$port" --http "$(gateway_addr "$i"):$port"
              --secret-file "$secret_file" --workers "$workers" --admin "$(admin_of "$1")"
              ${gateway_args[@]+"${gateway_args[@]}"}) ;;
    esac
}

start() {
    local argv pid
    argv_of "$1"
    # setsid: the process outlives this script and the terminal's signals; its PID is $!.
    setsid "${argv[@]}" </dev/null >>"$state_dir/$1.log" 2>&1 &
    pid=$!
    echo "$pid" >"$state_dir/$1.pid"
    echo "started $1 (pid $pid): ${argv[*]}"
}

# SIGTERM every process named, by PID; wait up to $timeout s for them all; SIGKILL what is left.
stop() {
    local name pid left deadline pids=()
    for name in "$@"; do
        if pid=$(live_pid "$name"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$name:$pid")
        fi
    done
    deadline=$((SECONDS + timeout))
    while :; do
        left=()
        for np in ${pids[@]+"${pids[@]}"}; do
            running "${np#*:}" && left+=("$np")
        done
        [ ${#left[@]} -eq 0 ] || [ $SECONDS -ge $deadline ] && break
        sleep 0.1
    done
    for np in ${left[@]+"${left[@]}"}; do
        echo "cluster.sh: ${np%%:*} (pid ${np#*:}) still running ${timeout}s after SIGTERM: SIGKILL" >&2
        kill -KILL "${np#*:}" 2>/dev/null || true
    done
    for np in ${pids[@]+"${pids[@]}"}; do
        echo "stopped ${np%%:*} (pid ${np#*:})"
        rm -f "$state_dir/${np%%:*}.pid"
    done
    for name in "$@"; do rm -f "$state_dir/$name.pid"; done
}

print_where() {
    local i
    echo
    echo "tracker URLs (one gateway each, as DNS round robin would hand them out; any will do):"
    for ((i = 1; i <= gateways; i++)); do
        echo "  udp://$(gateway_addr "$i"):$port/announce  http://$(gateway_addr "$i"):$port/announce"
    done
    echo "admin (/readyz /healthz /metrics /api/v1/cluster):"
    for name in $(names); do
        [ "$name" = redis ] && continue
        echo "  $name  http://$(admin_of "$name")/"
    done
    echo "redis: $redis_url$([ "$own_redis" = 1 ] || echo ' (yours: not started or stopped here)')"
    echo "logs, pid files, secret: $state_dir/"
    echo "stop: deploy/cluster.sh down$([ "$state_dir" = "$root/build/cluster" ] || echo " --state-dir $state_dir")"
}

any_alive() {
    local name
    for name in $(names); do live_pid "$name" >/dev/null && return 0; done
    return 1
}

set_real_paths
case "$cmd" in
status)
    [ -f "$conf" ] || { echo "no cluster in $state_dir (deploy/cluster.sh up starts one)"; exit 3; }
    bad=0
    for name in $(names); do
        if pid=$(live_pid "$name"); then
            if ready "$name"; then r=ready; else r="NOT READY"; bad=1; fi
            printf '%-12s pid %-8s %-11s %s\n' "$name" "$pid" "$r" "$state_dir/$name.log"
        else
            printf '%-12s %-12s %-11s %s\n' "$name" "-" "NOT RUNNING" "$state_dir/$name.log"
            bad=1
        fi
    done
    exit $bad
    ;;
down)
    [ -f "$conf" ] || { echo "no cluster in $state_dir"; exit 0; }
    gws=() nds=()
    for name in $(names); do
        case "$name" in gateway-*) gws+=("$name") ;; node-*) nds+=("$name") ;; esac
    done
    stop "${gws[@]}"
    stop "${nds[@]}"
    [ "$own_redis" = 1 ] && stop redis
    echo "cluster in $state_dir is down"
    exit 0
    ;;
esac

# ---- up ----
if [ "$given" = 1 ] && [ -n "$recorded" ] && any_alive &&
    [ "$(save_conf && cat "$conf")" != "$recorded" ]; then
    printf '%s\n' "$recorded" >"$conf"
    echo "cluster.sh: a cluster is running in $state_dir with other options; run down first" >&2
    exit 2
fi

[ "$deps" = 1 ] && deploy/install-deps.sh cluster
if [ ! -x "$bin/shoal-node" ] || [ ! -x "$bin/shoal-gateway" ]; then
    # All three binaries, so that `cmake --install` works from this build dir too.
    echo "building shoal, shoal-node and shoal-gateway in $build_dir"
    [ -f "$build_dir/CMakeCache.txt" ] ||
        cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DSHOAL_TESTS=OFF >/dev/null
    cmake --build "$build_dir" -j"$(nproc 2>/dev/null || echo 2)" --target shoal shoal-node shoal-gateway
fi

set_real_paths
save_conf
mkdir -p "$state_dir/redis"
if [ ! -s "$secret_file" ]; then
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$secret_file" && echo >>"$secret_file")
fi
chmod 600 "$secret_file"

# A gateway refuses a port another process holds; say which one before starting anything.
for name in $(names); do
    live_pid "$name" >/dev/null && continue
    a=$host
    case "$name" in
    gateway-*) a=$(gateway_addr "$(index_of "$name")") p=$port ;;
    node-*) p=$(node_port_of "$(index_of "$name")") ;;
    redis) p=$redis_port ;;
    esac
    # A node needs one port per worker.
    span=1
    case "$name" in node-*) span=$workers ;; esac
    for ((k = 0; k < span; k++)); do
        if timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$a" "$((p + k))" 2>/dev/null; then
            echo "cluster.sh: $a:$((p + k)) ($name) is already in use by another process" >&2
            exit 1
        fi
    done
done

started=0
for group in redis node- gateway-; do
    for name in $(names); do
        case "$name" in "$group"*) ;; *) continue ;; esac
        if pid=$(live_pid "$name"); then
            echo "$name already running (pid $pid)"
            continue
        fi
        start "$name"
        started=1
    done
    # Redis first: nodes and gateways read it at start.
    if [ "$group" = redis ] && [ "$own_redis" = 1 ]; then
        deadline=$((SECONDS + timeout))
        until ready redis; do
            live_pid redis >/dev/null || { echo "cluster.sh: redis exited:" >&2; tail -5 "$state_dir/redis.log" >&2; exit 1; }
            [ $SECONDS -lt $deadline ] || { echo "cluster.sh: redis did not answer in ${timeout}s" >&2; exit 1; }
            sleep 0.1
        done
    fi
done

deadline=$((SECONDS + timeout))
while :; do
    waiting=()
    for name in $(names); do
        if ! live_pid "$name" >/dev/null; then
            echo "cluster.sh: $name exited; its log ($state_dir/$name.log) ends:" >&2
            tail -5 "$state_dir/$name.log" >&2
            exit 1
        fi
        ready "$name" || waiting+=("$name")
    done
    [ ${#waiting[@]} -eq 0 ] && break
    if [ $SECONDS -ge $deadline ]; then
        echo "cluster.sh: not ready after ${timeout}s: ${waiting[*]} (deploy/cluster.sh status; logs in $state_dir)" >&2
        exit 1
    fi
    sleep 0.2
done
[ "$started" = 1 ] && echo "cluster ready: $nodes nodes, $gateways gateways" || echo "cluster already up and ready"
print_where
