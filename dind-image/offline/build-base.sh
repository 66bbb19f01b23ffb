#!/usr/bin/env bash
# Build the offline base image, for machines where jenkins/jenkins cannot be pulled.
#
# Two images, so that the slow part is done once per machine:
#   1. $ROOTFS_TAG: `debootstrap --variant=minbase` Debian 13 (trixie) with python3 and tini,
#      imported with `docker import`. Labelled with a hash of this script; reused as long as
#      that hash matches, so a second run does not debootstrap again.
#   2. $BASE_TAG: offline/Dockerfile on top of it (jenkins user, jenkins.sh, jenkins-plugin-cli,
#      the stand-in),
#      an ordinary `docker build` whose layer cache makes warm rebuilds take seconds.
# Only the stand-in's own modules are copied (not all of src/dindjobs), so edits elsewhere in
# the package do not invalidate the base and, with it, every layer of the wrapper image.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
ROOTFS_TAG=${DINDJOBS_OFFLINE_ROOTFS:-dindjobs-offline-rootfs:trixie}
BASE_TAG=${DINDJOBS_OFFLINE_BASE:-dindjobs-offline-base:trixie}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=trixie
# Everything the wrapper Dockerfile and the stand-in expect to find in the base.
PACKAGES=python3,tini,ca-certificates
HASH_LABEL=org.dindjobs.rootfs-script-sha256

log() { printf 'build-base: %s\n' "$*" >&2; }

script_hash=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)

build_rootfs() {
    local work rootfs
    command -v debootstrap >/dev/null || { log "debootstrap is not installed (apt-get install debootstrap)"; exit 1; }
    work=$(mktemp -d /var/tmp/dindjobs-rootfs.XXXXXX)
    # shellcheck disable=SC2064  # expand $work now: it is local to this function
    trap "rm -rf '$work'" EXIT
    rootfs=$work/rootfs
    log "debootstrap $SUITE ($PACKAGES) from $MIRROR"
    debootstrap --variant=minbase --include="$PACKAGES" \
        --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
        "$SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
        tail -n 30 "$work/debootstrap.log" >&2; log "debootstrap failed"; exit 1; }
    # Updates and security fixes for the packages the wrapper Dockerfile installs later.
    cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
SOURCES
    rm -rf "${rootfs:?}"/var/lib/apt/lists/* "${rootfs:?}"/var/cache/apt/*.bin "${rootfs:?}"/var/cache/apt/archives/*.deb \
        "${rootfs:?}"/var/log/* "${rootfs:?}"/tmp/* "${rootfs:?}"/dev/*
    log "docker import as $ROOTFS_TAG"
    tar --numeric-owner -C "$rootfs" -c . | docker import \
        --change "LABEL $HASH_LABEL=$script_hash" \
        --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' \
        - "$ROOTFS_TAG" >/dev/null
    rm -rf "$work"
    trap - EXIT
}

# The stand-in package plus the dindjobs modules it imports (transitively), nothing else.
standin_files() {
    python3 - "$repo/src" <<'PY'
import ast, sys
from pathlib import Path

src = Path(sys.argv[1])
pkg = src / "dindjobs"
todo = [pkg / "__init__.py", pkg / "standin"]
seen = []
while todo:
    path = todo.pop()
    if path in seen or not path.exists():
        continue
    seen.append(path)
    for py in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
        for node in ast.walk(ast.parse(py.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "dindjobs" and len(parts) > 1:
                    todo += [pkg / parts[1], pkg / f"{parts[1]}.py"]
for path in seen:
    print(path.relative_to(src))
PY
}

current=$(docker image inspect --format "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$ROOTFS_TAG" 2>/dev/null || true)
if [ "$current" = "$script_hash" ]; then
    log "$ROOTFS_TAG is up to date (script hash ${script_hash:0:12}); no debootstrap"
else
    build_rootfs
fi

log "docker build $BASE_TAG"
mapfile -t files < <(standin_files)
# The context is assembled on the fly: offline/ plus the stand-in sources from src/.
tar -c --exclude=__pycache__ --exclude='*.pyc' \
    -C "$here" Dockerfile jenkins.sh jenkins-plugin-cli -C "$repo/src" "${files[@]}" |
    docker build --quiet --network host --build-arg ROOTFS_IMAGE="$ROOTFS_TAG" -t "$BASE_TAG" - >/dev/null
log "$BASE_TAG ready"
