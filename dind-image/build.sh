#!/usr/bin/env bash
# `make image`: build the wrapper image dindjobs-wrapper:latest from dind-image/.
# OFFLINE=1 first builds (or reuses) the offline base from Debian packages and builds on it.
# Uses the docker CLI, so DOCKER_HOST selects the engine.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
TAG=${DINDJOBS_IMAGE:-dindjobs-wrapper:latest}
OFFLINE_BASE=${DINDJOBS_OFFLINE_BASE:-dindjobs-offline-base:trixie}

args=()
case "${OFFLINE:-}" in
    "" | 0) ;;
    *)
        DINDJOBS_OFFLINE_BASE=$OFFLINE_BASE "$here/offline/build-base.sh"
        args+=(--build-arg "BASE_IMAGE=$OFFLINE_BASE")
        ;;
esac
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$repo/src/dindjobs/__init__.py")
revision=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
# Host networking: apt inside the build must work on engines started with --bridge=none.
docker build --network host "${args[@]}" \
    --build-arg "DINDJOBS_VERSION=${version:-dev}" --build-arg "VCS_REF=$revision" \
    -t "$TAG" "$here"
echo "built $TAG" >&2
