#!/usr/bin/env bash
# make demo: the whole chain on this machine, reusing whatever already exists.
#   Docker engine? -> venv -> wrapper image (real jenkins/jenkins base if it can be pulled, else
#   the offline base) -> dindjobs up -> wait -> sync jjb/ -> verify jjb/ -> where to go next.
# Settings: DINDJOBS_NAME (wrapper name, default dindjobs), DEMO_PORT (default 8080),
# DINDJOBS_IMAGE (image tag), DOCKER_HOST, DINDJOBS_STATE_DIR: as for the dindjobs CLI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
PORT=${DEMO_PORT:-8080}
DJ=.venv/bin/dindjobs
LOG_DIR=${DEMO_LOG_DIR:-.demo}
start=$(date +%s)

say() { printf 'make demo: %s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }

# 1. A Docker engine must answer; nothing else can work without one. (stdlib only: no venv yet)
engine=$("$PYTHON" - <<'PY'
import http.client, os, socket, sys
host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(5)
        self.sock.connect(host[len("unix://"):])
try:
    if host.startswith("unix://"):
        conn = Unix("localhost", timeout=5)
    elif host.startswith("tcp://"):
        conn = http.client.HTTPConnection(host[len("tcp://"):].rstrip("/"), timeout=5)
    else:
        raise OSError("unsupported DOCKER_HOST")
    conn.request("GET", "/_ping")
    ok = conn.getresponse().status == 200
except OSError:
    ok = False
print(host)
sys.exit(0 if ok else 1)
PY
) || {
    say "no Docker engine answers at ${engine:-${DOCKER_HOST:-unix:///var/run/docker.sock}}."
    say "start one: apt-get install docker.io, then run dockerd (or systemctl start docker), or set DOCKER_HOST."
    exit 1
}

# 2. The virtualenv (a no-op when up to date); its output goes to a log so that the line
#    announcing the base is the first one printed.
mkdir -p "$LOG_DIR"
if ! make -s venv >"$LOG_DIR/venv.log" 2>&1; then
    tail -n 30 "$LOG_DIR/venv.log"
    say "creating the virtualenv failed (whole log: $LOG_DIR/venv.log)"
    exit 1
fi

# 3. The base: the pinned jenkins/jenkins when it is here or can be pulled, else the offline one.
base=$(sed -n 's/^ARG BASE_IMAGE=//p' dind-image/Dockerfile | head -n 1)
if .venv/bin/python - "$base" <<'PY' >/dev/null 2>&1
import sys
import docker
client = docker.from_env(timeout=600)
name = sys.argv[1]
try:
    client.images.get(name)
except docker.errors.ImageNotFound:
    repo, _, tag = name.rpartition(":")
    client.images.pull(repo, tag=tag)
PY
then
    say "using the real Jenkins base $base"
    image_flags=()
else
    say "$base cannot be pulled here: using the OFFLINE base (Debian + the dindjobs Jenkins stand-in)"
    image_flags=(--offline)
fi
say "Docker engine: $engine"
step "wrapper image (build log: $LOG_DIR/image.log)"
if ! "$DJ" image "${image_flags[@]}" --json >"$LOG_DIR/image.json" 2>"$LOG_DIR/image.log"; then
    tail -n 30 "$LOG_DIR/image.log"
    say "the image build failed (whole log: $LOG_DIR/image.log)"
    exit 1
fi
.venv/bin/python -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["tag"], d["id"][:19])' \
    "$LOG_DIR/image.json"

step "dindjobs up"
"$DJ" up --port "$PORT" --json >"$LOG_DIR/up.json"
read -r url password_file < <(.venv/bin/python -c \
    'import json, sys; d = json.load(open(sys.argv[1])); print(d["url"], d["password_file"])' "$LOG_DIR/up.json")
export DINDJOBS_URL=$url

step "dindjobs wait"
"$DJ" wait --timeout 300

step "dindjobs sync jjb/"
"$DJ" sync jjb/ --yes

step "dindjobs verify jjb/"
verified=0
"$DJ" verify jjb/ --quiet || verified=$?

name=${DINDJOBS_NAME:-dindjobs}
cat <<DONE

== done in $(( $(date +%s) - start )) s
Jenkins:         $url  (user admin)
Admin password:  in $password_file (readable by you only; never printed)
Stop it:         $DJ --name $name down    (keeps the volumes; add --volumes --yes to delete them)
Again:           make demo   (reuses the image, the running wrapper and the jobs)
DONE
if [ "$verified" -ne 0 ]; then
    say "verify failed (exit $verified): see the report above"
fi
exit "$verified"
