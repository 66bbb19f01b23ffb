#!/bin/sh
# Build $IMAGE_NAME:$IMAGE_TAG in the wrapper's nested Docker daemon and print evidence lines.
# Parameters (environment): IMAGE_NAME, IMAGE_TAG, BUILD_CONTEXT (git URL, optional),
# DOCKERFILE (text, used without BUILD_CONTEXT), BUILD_ARGS (NAME=value lines).
set -eu

base=dindjobs/busybox-base
work="${WORKSPACE:-$PWD}/build"
rm -rf "$work"
mkdir -p "$work/base" "$work/context"

# The base image is made here, from the wrapper's static busybox, so nothing is ever pulled.
if ! docker image inspect "$base" >/dev/null 2>&1; then
  cp /bin/busybox "$work/base/busybox"
  printf '%s\n' 'FROM scratch' 'COPY busybox /bin/busybox' \
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]' 'CMD ["/bin/sh"]' > "$work/base/Dockerfile"
  docker build --network none -t "$base" "$work/base"
fi

if [ -n "${BUILD_CONTEXT:-}" ]; then
  git clone --depth 1 "$BUILD_CONTEXT" "$work/context"
else
  printf '%s\n' "$DOCKERFILE" > "$work/context/Dockerfile"
fi

set -- --network none -t "$IMAGE_NAME:$IMAGE_TAG"
if [ -n "${BUILD_ARGS:-}" ]; then
  # One NAME=value per line; values may contain spaces.
  while IFS= read -r arg; do
    [ -n "$arg" ] && set -- "$@" --build-arg "$arg"
  done <<ARGS
$BUILD_ARGS
ARGS
fi
docker build "$@" "$work/context"

docker run --rm --network none "$IMAGE_NAME:$IMAGE_TAG"
echo "DINDJOBS-EVIDENCE daemon-id=$(docker info --format '{{.ID}}')"
echo "DINDJOBS-EVIDENCE image-id=$(docker image inspect --format '{{.Id}}' "$IMAGE_NAME:$IMAGE_TAG")"
echo "DINDJOBS-EVIDENCE tag=$IMAGE_NAME:$IMAGE_TAG"
