#!/usr/bin/env bash
# Build dindjobs-mimic-base (a jenkins/jenkins look-alike, see Dockerfile) without a registry.
# It takes the stand-in's modules from the offline base, so that one is built (or found up to
# date) first with ../offline/build-base.sh. Prints nothing but progress on stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MIMIC_TAG=${DINDJOBS_MIMIC_BASE:-dindjobs-mimic-base:2.580.2}
ROOTFS_TAG=${DINDJOBS_OFFLINE_ROOTFS:-dindjobs-offline-rootfs:trixie}
BASE_TAG=${DINDJOBS_OFFLINE_BASE:-dindjobs-offline-base:trixie}

"$here/../offline/build-base.sh"
printf 'mimic: docker build %s\n' "$MIMIC_TAG" >&2
docker build --quiet --network host --build-arg STANDIN_IMAGE="$BASE_TAG" --build-arg ROOTFS_IMAGE="$ROOTFS_TAG" \
    -t "$MIMIC_TAG" "$here" >/dev/null
printf 'mimic: %s ready\n' "$MIMIC_TAG" >&2
