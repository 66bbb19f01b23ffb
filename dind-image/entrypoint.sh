#!/usr/bin/env bash
# dindjobs wrapper entrypoint: a nested dockerd plus Jenkins in one container.
#
# Run by tini as PID 1 (tini reaps the containerd-shim zombies), as root:
#   1. prepare: cgroups (v2 nesting, or v1 hierarchies re-mounted read-write), refuse a
#      /var/lib/docker on overlayfs, pick the iptables backend, TLS certificates if asked;
#   2. clean what a killed container leaves behind (pidfiles, sockets, exec-root);
#   3. start dockerd (extra arguments from DINDJOBS_DOCKERD_ARGS), log to stderr and a file;
#   4. wait for its API, or exit non-zero with the tail of its log;
#   5. start Jenkins (or the command given) as `jenkins`, with its supplementary groups;
#   6. supervise both: the first to end stops the other; SIGTERM/SIGINT stop Jenkins first,
#      then dockerd. Jenkins' exit status becomes the container's.
# Sourcing this file (tests do) defines the functions without running anything.
set -euo pipefail

DOCKER_SOCK=/var/run/docker.sock
DOCKER_EXEC_ROOT=/var/run/docker
DOCKER_DATA_ROOT=/var/lib/docker
JENKINS_USER=jenkins
JENKINS_SH=/usr/local/bin/jenkins.sh
SECRETS_DIR=/run/dindjobs/secrets
LOG_DIR=${DINDJOBS_LOG_DIR:-/var/log/dindjobs}
DOCKERD_LOG=$LOG_DIR/dockerd.log
# Overridable so tests can point the cgroup code at a fake tree.
CGROUP_ROOT=${DINDJOBS_CGROUP_ROOT:-/sys/fs/cgroup}
# Shutdown budget, inside the 60 s stop timeout `dindjobs up` sets (docker run --stop-timeout 60):
# Jenkins gets 25 s, then dockerd stops its containers within 15 s and gets 10 s more to exit.
JENKINS_STOP_GRACE=25
DOCKERD_SHUTDOWN_TIMEOUT=15
DOCKERD_STOP_GRACE=$((DOCKERD_SHUTDOWN_TIMEOUT + 10))

DOCKERD_PID=""
JENKINS_PID=""
JENKINS_NAME=Jenkins  # or "command <name>" when a command runs instead
CHILD_RC=0
STOP_SIGNAL=""
DOCKERD_ARGS=()

log() { printf 'dindjobs-entrypoint: %s\n' "$*" >&2; }
warn() { log "warning: $*"; }
die() { log "error: $*"; exit 1; }

# --- 1. prepare --------------------------------------------------------------------------

# Write one value to a cgroup file. A function of its own so tests can simulate EBUSY.
cg_write() { printf '%s\n' "$1" >>"$2"; }

# cgroup v2: "no internal processes" means the root cgroup must be emptied into a child before
# controllers can be delegated to dockerd's cgroups. `docker exec` can add processes at any
# moment, so move and enable in a loop until the write to subtree_control succeeds.
cgroup_v2_nest() {
    local root=$1 attempts=${2:-100} i pid controllers=""
    mkdir -p "$root/init"
    for ctrl in $(<"$root/cgroup.controllers"); do controllers+="+$ctrl "; done
    controllers=${controllers% }
    for ((i = 1; i <= attempts; i++)); do
        while read -r pid; do
            # A process may exit between the read and the write: not an error.
            [ -n "$pid" ] && { cg_write "$pid" "$root/init/cgroup.procs" 2>/dev/null || true; }
        done <"$root/cgroup.procs"
        if [ -z "$controllers" ] || cg_write "$controllers" "$root/cgroup.subtree_control" 2>/dev/null; then
            log "cgroup v2: processes moved to init/, controllers enabled: ${controllers:-none}"
            return 0
        fi
        sleep 0.1
    done
    log "cgroup v2: could not enable controllers ($controllers) in $root after $attempts attempts"
    return 1
}

# cgroup v1: Docker mounts the hierarchies read-only unless --privileged; dockerd must create
# cgroups for its containers, so re-mount each read-only hierarchy read-write.
cgroup_v1_remount() {
    local mp opts fstype
    while read -r mp opts fstype; do
        [ "$fstype" = cgroup ] || continue
        case "$mp" in "$CGROUP_ROOT"/*) ;; *) continue ;; esac
        case ",$opts," in
            *,ro,*) mount -o remount,rw,bind "$mp" || die "cannot re-mount $mp read-write (the container lacks CAP_SYS_ADMIN?)" ;;
        esac
    done < <(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { print $5, $6, $(i + 1); break } }' /proc/self/mountinfo)
    log "cgroup v1: hierarchies under $CGROUP_ROOT are writable"
}

prepare_cgroups() {
    if [ -f "$CGROUP_ROOT/cgroup.controllers" ]; then
        cgroup_v2_nest "$CGROUP_ROOT" || die "cgroup v2 nesting failed; is the container privileged, with a private cgroup namespace?"
    else
        cgroup_v1_remount
    fi
}

# A nested overlay2 cannot sit on overlayfs; dockerd would silently fall back to vfs (a full
# copy of every layer). Refuse, unless DINDJOBS_ALLOW_VFS=1 asks for vfs explicitly.
check_data_root() {
    local dir=$1 fstype
    fstype=$(stat -f -c %T "$dir")
    [ "$fstype" = overlayfs ] || return 0
    if [ "${DINDJOBS_ALLOW_VFS:-0}" = 1 ]; then
        warn "$dir is on overlayfs: using the slow vfs storage driver because DINDJOBS_ALLOW_VFS=1"
        DOCKERD_ARGS+=(--storage-driver=vfs)
        return 0
    fi
    log "error: $dir is on overlayfs (the container's own filesystem), where the nested daemon's overlay2 cannot work."
    log "error: mount a volume there (docker run -v NAME:$dir; dindjobs up does), or set DINDJOBS_ALLOW_VFS=1 to accept the slow vfs driver."
    return 1
}

# The backend must match what the host kernel already uses (docker:dind's rule): legacy when
# legacy tables exist, else nf_tables. DINDJOBS_IPTABLES_LEGACY=1/0 overrides.
select_iptables() {
    local legacy=${DINDJOBS_IPTABLES_LEGACY:-} backend
    command -v update-alternatives >/dev/null && [ -x /usr/sbin/iptables-legacy ] || return 0
    if [ -z "$legacy" ]; then
        legacy=0
        if [ -s /proc/net/ip_tables_names ] || [ -s /proc/net/ip6_tables_names ]; then legacy=1; fi
    fi
    backend=nft
    [ "$legacy" = 1 ] && backend=legacy
    update-alternatives --set iptables "/usr/sbin/iptables-$backend" >/dev/null
    update-alternatives --set ip6tables "/usr/sbin/ip6tables-$backend" >/dev/null
    log "iptables backend: $backend"
}

# Exposing the daemon on TCP is opt-in and only with mutual TLS. dockerd reads any --host that
# is not unix:// or fd:// as TCP (a bare "127.0.0.1:2375" or ":2375" too), so check every form
# of the flag, not just values spelled tcp://.
check_no_plain_tcp() {
    local arg host expect_host=""
    for arg in "$@"; do
        host=""
        if [ -n "$expect_host" ]; then
            host=$arg; expect_host=""
        else
            case "$arg" in
                -H|--host) expect_host=1; continue ;;
                --host=*) host=${arg#--host=} ;;
                -H=*) host=${arg#-H=} ;;
                -H*) host=${arg#-H} ;;
                *tcp://*) host=$arg ;;
            esac
        fi
        case "$host" in
            ""|unix://*|fd://*) ;;
            *) die "plain TCP for the nested daemon is refused ($host in DINDJOBS_DOCKERD_ARGS): set DINDJOBS_DOCKER_TLS=1 for mutual TLS on port ${DINDJOBS_DOCKER_TLS_PORT:-2376}" ;;
        esac
    done
}

# Like docker:dind: the CA is kept in $certs/ca and reused; server and client leaf certificates
# are made anew at each start. Clients need $certs/client (readable by the docker group).
setup_tls() {
    local certs=${DINDJOBS_TLS_CERTDIR:-/certs} port=${DINDJOBS_DOCKER_TLS_PORT:-2376} san ext
    command -v openssl >/dev/null || die "DINDJOBS_DOCKER_TLS=1 needs openssl"
    mkdir -p "$certs/ca" "$certs/server" "$certs/client"
    chmod 0700 "$certs/ca" "$certs/server"
    if [ ! -s "$certs/ca/key.pem" ] || [ ! -s "$certs/ca/cert.pem" ]; then
        openssl ecparam -name prime256v1 -genkey -noout -out "$certs/ca/key.pem" 2>/dev/null
        openssl req -new -x509 -sha256 -days 825 -key "$certs/ca/key.pem" -out "$certs/ca/cert.pem" \
            -subj "/CN=dindjobs nested docker CA" 2>/dev/null
        log "TLS: new CA in $certs/ca"
    fi
    san="DNS:localhost,IP:127.0.0.1,IP:::1,DNS:$HOSTNAME"
    [ -n "${DINDJOBS_DOCKER_TLS_SAN:-}" ] && san+=",$DINDJOBS_DOCKER_TLS_SAN"
    ext=$(mktemp)
    issue_cert "$certs" server "subjectAltName=$san
extendedKeyUsage=serverAuth" "$ext"
    issue_cert "$certs" client "extendedKeyUsage=clientAuth" "$ext"
    rm -f "$ext"
    chgrp -R docker "$certs/client"
    chmod 0750 "$certs/client"
    chmod 0640 "$certs/client/key.pem"
    DOCKERD_ARGS+=(--host="tcp://0.0.0.0:$port" --tlsverify --tlscacert="$certs/server/ca.pem"
        --tlscert="$certs/server/cert.pem" --tlskey="$certs/server/key.pem")
    log "TLS: nested daemon also listens on tcp port $port (mutual TLS; client certificates in $certs/client)"
}

issue_cert() {
    local certs=$1 name=$2 extensions=$3 ext=$4 dir=$1/$2
    printf '%s\n' "$extensions" >"$ext"
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/key.pem" 2>/dev/null
    chmod 0600 "$dir/key.pem"
    openssl req -new -sha256 -key "$dir/key.pem" -subj "/CN=dindjobs-docker-$name" -out "$dir/csr.pem" 2>/dev/null
    openssl x509 -req -sha256 -days 825 -in "$dir/csr.pem" -CA "$certs/ca/cert.pem" -CAkey "$certs/ca/key.pem" \
        -CAcreateserial -extfile "$ext" -out "$dir/cert.pem" 2>/dev/null
    cp "$certs/ca/cert.pem" "$dir/ca.pem"
    rm -f "$dir/csr.pem"
}

prepare_environment() {
    export container=docker  # containerd's AppArmor detection looks at it
    prepare_cgroups
    # Volumes and bind mounts of nested containers need shared propagation; harmless if it fails.
    mount --make-rshared / 2>/dev/null || warn "mount --make-rshared / failed"
    check_data_root "$DOCKER_DATA_ROOT" || exit 1
    select_iptables
}

# An empty JENKINS_HOME not owned by uid 1000 (a fresh bind mount) is given to jenkins; a
# populated one is never chowned recursively: that is the operator's data.
prepare_jenkins_home() {
    local home=${JENKINS_HOME:-/var/jenkins_home} uid
    uid=$(id -u "$JENKINS_USER")
    mkdir -p "$home"
    if [ "$(stat -c %u "$home")" != "$uid" ]; then
        if [ -z "$(ls -A "$home")" ]; then
            chown "$JENKINS_USER:$JENKINS_USER" "$home"
            log "$home was empty and not owned by $JENKINS_USER: chowned"
        else
            warn "$home is not owned by $JENKINS_USER (uid $uid) and not empty; left as is"
        fi
    fi
}

# The admin password file is bind-mounted from the host, often 0600 root and with a trailing
# newline. Copy it, newline stripped, to a tmpfs only jenkins can read: never into the image,
# the container layer or the environment. JCasC and the stand-in read the copy.
prepare_admin_secret() {
    local src=${JENKINS_ADMIN_PASSWORD_FILE:-/run/secrets/jenkins-admin-password} value
    [ -s "$src" ] ||
        die "the admin password file $src is missing or empty: mount one read-only (dindjobs up does), or set JENKINS_ADMIN_PASSWORD_FILE"
    mkdir -p "$SECRETS_DIR"
    mountpoint -q "$SECRETS_DIR" || mount -t tmpfs -o size=64k,mode=0700,nosuid,nodev,noexec tmpfs "$SECRETS_DIR" ||
        die "cannot mount a tmpfs on $SECRETS_DIR for the admin password"
    chown "$JENKINS_USER:$JENKINS_USER" "$SECRETS_DIR"
    value=$(<"$src")
    (umask 077 && printf '%s' "$value" >"$SECRETS_DIR/admin-password")
    unset value
    chown "$JENKINS_USER:$JENKINS_USER" "$SECRETS_DIR/admin-password"
    export JENKINS_ADMIN_PASSWORD_FILE=$SECRETS_DIR/admin-password
}

# --- 2. stale state ----------------------------------------------------------------------

# After `docker kill` the pidfiles stay in the container layer; on the next start the recorded
# PID may belong to another process, and dockerd or its containerd would refuse to start or wait.
# A new container start guarantees no old daemon runs, so all of it can go.
clean_stale_state() {
    rm -f /run/docker*.pid /var/run/docker*.pid /run/containerd*.pid /var/run/containerd*.pid
    rm -rf "$DOCKER_EXEC_ROOT" "$DOCKER_SOCK" /run/containerd
}

# --- 3. + 4. dockerd ---------------------------------------------------------------------

alive() { kill -0 "$1" 2>/dev/null && ! grep -qs '^State:[[:space:]]*Z' "/proc/$1/status"; }

dockerd_ping() { curl -fsS --max-time 2 --unix-socket "$DOCKER_SOCK" http://localhost/_ping >/dev/null 2>&1; }

dockerd_log_tail() {
    log "last lines of $DOCKERD_LOG:"
    tail -n "${1:-30}" "$DOCKERD_LOG" >&2 || true
}

start_dockerd() {
    local extra=()
    read -r -a extra <<<"${DINDJOBS_DOCKERD_ARGS:-}"
    check_no_plain_tcp "${extra[@]}"
    case "${DINDJOBS_DOCKER_TLS:-0}" in
        1) setup_tls ;;
        0 | "") ;;
        *) die "DINDJOBS_DOCKER_TLS must be 1 or 0, got '${DINDJOBS_DOCKER_TLS}'" ;;
    esac
    mkdir -p "$LOG_DIR"
    [ -f "$DOCKERD_LOG" ] && mv -f "$DOCKERD_LOG" "$DOCKERD_LOG.1"
    log "starting dockerd ${extra[*]}"
    # The raw log goes to a file (for the failure tail), a prefixed copy to stderr (docker logs).
    dockerd --host="unix://$DOCKER_SOCK" --group=docker --shutdown-timeout="$DOCKERD_SHUTDOWN_TIMEOUT" \
        "${DOCKERD_ARGS[@]}" "${extra[@]}" \
        > >(tee "$DOCKERD_LOG" | sed -u 's/^/dockerd: /' >&2) 2>&1 &
    DOCKERD_PID=$!
}

wait_for_dockerd() {
    local timeout=${DINDJOBS_DOCKERD_TIMEOUT:-60} start=$EPOCHREALTIME rc=0
    [[ "$timeout" =~ ^[0-9]+$ ]] || die "DINDJOBS_DOCKERD_TIMEOUT must be a number of seconds, got '$timeout'"
    while :; do
        if ! alive "$DOCKERD_PID"; then
            wait "$DOCKERD_PID" || rc=$?
            sleep 0.2  # let tee write the last lines
            dockerd_log_tail
            die "dockerd exited with status $rc before it was ready"
        fi
        if dockerd_ping; then
            log "nested dockerd ready after $(elapsed "$start")s"
            return 0
        fi
        if ((EPOCHSECONDS - ${start%[.,]*} >= timeout)); then
            dockerd_log_tail
            stop_child dockerd "$DOCKERD_PID" "$DOCKERD_STOP_GRACE"
            die "dockerd did not answer on $DOCKER_SOCK within ${timeout}s"
        fi
        sleep 0.1
    done
}

# Seconds from an $EPOCHREALTIME value to now (or to $2), as "S.s"; bash has no floating point.
elapsed() {
    local now=${2:-$EPOCHREALTIME} then=${1/[.,]/} d
    now=${now/[.,]/}
    d=$(((10#$now - 10#$then) / 100000))
    printf '%d.%d' $((d / 10)) $((d % 10))
}

# --- 5. Jenkins ----------------------------------------------------------------------------

# No arguments or `--options` mean Jenkins (jenkins.sh's convention); anything else is a command.
wants_jenkins() { [ $# -eq 0 ] || [[ "$1" == --* ]]; }

start_jenkins() {
    local cmd=("$@")
    if wants_jenkins "$@"; then
        # For jenkins.war (the stand-in reads the variables itself). User options come last and win.
        local opts="--httpPort=${JENKINS_HTTP_PORT:-8080}"
        [ -z "${JENKINS_HTTP_LISTEN_ADDRESS:-}" ] || opts+=" --httpListenAddress=$JENKINS_HTTP_LISTEN_ADDRESS"
        export JENKINS_OPTS="$opts ${JENKINS_OPTS:-}"
        cmd=("$JENKINS_SH" "${cmd[@]}")
    else
        JENKINS_NAME="command ${cmd[0]}"
    fi
    export HOME=${JENKINS_HOME:-/var/jenkins_home} USER=$JENKINS_USER LOGNAME=$JENKINS_USER
    export DOCKER_HOST="unix://$DOCKER_SOCK"
    log "starting as $JENKINS_USER: ${cmd[*]}"
    # <&0 keeps stdin (a background job would get /dev/null), so `docker run -it IMAGE bash` works.
    setpriv --reuid="$JENKINS_USER" --regid="$JENKINS_USER" --init-groups -- "${cmd[@]}" <&0 &
    JENKINS_PID=$!
}

# --- 6. supervision ----------------------------------------------------------------------

# Signal a child, wait up to `grace` seconds, then SIGKILL it; its exit status goes to CHILD_RC.
# (A global, not output: `$(stop_child ...)` would run in a subshell that cannot `wait` for it.)
stop_child() {
    local name=$1 pid=$2 grace=$3 deadline
    CHILD_RC=0
    if alive "$pid"; then
        log "stopping $name (pid $pid, up to ${grace}s)"
        kill -TERM "$pid" 2>/dev/null || true
        deadline=$((SECONDS + grace))
        while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
        if alive "$pid"; then
            warn "$name did not stop within ${grace}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || CHILD_RC=$?
    log "$name ended with status $CHILD_RC"
}

on_signal() {
    # The first signal starts the ordered shutdown; later ones change nothing.
    [ -n "$STOP_SIGNAL" ] || STOP_SIGNAL=$1
}

supervise() {
    local finished rc jenkins_rc
    trap 'on_signal TERM' TERM
    trap 'on_signal INT' INT
    while :; do
        finished=""
        rc=0
        # `wait -n -p` unsets `finished` when a signal interrupts it.
        wait -n -p finished "$JENKINS_PID" "$DOCKERD_PID" || rc=$?
        if [ -n "$STOP_SIGNAL" ]; then
            log "SIG$STOP_SIGNAL: stopping $JENKINS_NAME, then dockerd"
            trap '' TERM INT
            # `wait -n` may have collected a child that ended at the same time: use its status.
            if [ "${finished:-}" = "$JENKINS_PID" ]; then
                jenkins_rc=$rc
                log "$JENKINS_NAME ended with status $rc"
            else
                stop_child "$JENKINS_NAME" "$JENKINS_PID" "$JENKINS_STOP_GRACE"
                jenkins_rc=$CHILD_RC
            fi
            [ "${finished:-}" = "$DOCKERD_PID" ] || stop_child dockerd "$DOCKERD_PID" "$DOCKERD_STOP_GRACE"
            # Jenkins ending because we signalled it (143/130) is a clean stop.
            case "$jenkins_rc" in 0 | 130 | 143) exit 0 ;; *) exit "$jenkins_rc" ;; esac
        fi
        if [ "${finished:-}" = "$JENKINS_PID" ]; then
            log "$JENKINS_NAME ended with status $rc: stopping dockerd"
            trap '' TERM INT
            stop_child dockerd "$DOCKERD_PID" "$DOCKERD_STOP_GRACE"
            exit "$rc"
        fi
        if [ "${finished:-}" = "$DOCKERD_PID" ]; then
            log "error: dockerd ended unexpectedly with status $rc: stopping $JENKINS_NAME"
            trap '' TERM INT
            dockerd_log_tail 20
            stop_child "$JENKINS_NAME" "$JENKINS_PID" "$JENKINS_STOP_GRACE"
            exit 1
        fi
    done
}

main() {
    [ "$(id -u)" = 0 ] || die "the entrypoint must run as root (it starts dockerd, then drops to $JENKINS_USER)"
    # The secret first: a missing password should fail before anything starts.
    if wants_jenkins "$@"; then prepare_admin_secret; fi
    prepare_environment
    clean_stale_state
    start_dockerd
    wait_for_dockerd
    prepare_jenkins_home
    start_jenkins "$@"
    supervise
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
