#!/usr/bin/env bash
# Build the CPU image on a machine with no Docker engine and no reachable image registry (this project's CI
# kind: a Debian 12 VM, root, Debian's and PyPI's mirrors only), with podman:
#   1. installs podman, runc and debootstrap from Debian's packages when they are missing;
#   2. makes the local base image $BASE (Debian 12 minbase + python3, venv, CA certificates) with debootstrap;
#   3. builds docker/Dockerfile.cpu on it and tags it as components/_image.py names the CPU image
#      (override with IMAGE=...);
#   4. checks that `vad --help` runs in it.
# Idempotent: an existing base is kept and podman's layer cache reuses every unchanged step.
# This machine's pip settings (index mirrors, wheel folder, CA bundle) are mounted into the build's RUN steps
# only (podman build -v): nothing of them ends up in the image.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${BASE:-localhost/vad-base:bookworm-py3.11}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/docker/podman/containers.conf}
# Host paths that carry pip's settings here; the ones that exist are mounted read-only into the build.
PIP_PATHS=(/etc/pip.conf /etc/xdg/pip /opt/wheels /opt/pypi /opt/pypi-more /etc/ssl/certs/ca-certificates.crt)
TORCH_WHEEL_DIR=${TORCH_WHEEL_DIR:-/opt/wheels}

say() { printf '[build-local] %s\n' "$*" >&2; }

if [[ $(id -u) != 0 ]]; then
    say "needs root (apt-get, debootstrap and rootful podman); run it with sudo"
    exit 2
fi

missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi

if podman image exists "$BASE"; then
    say "base $BASE: present"
else
    say "base $BASE: debootstrap Debian 12 from $MIRROR"
    rootfs=$(mktemp -d /var/tmp/vad-base.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$MIRROR" \
        >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs.log"
    tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
fi

if [[ -z ${IMAGE:-} ]]; then
    IMAGE=$(python3 -c 'import runpy; print(runpy.run_path("components/_image.py")["VAD_CPU_IMAGE"])')
fi

mounts=()
for path in "${PIP_PATHS[@]}"; do [[ -e $path ]] && mounts+=(-v "$path:$path:ro"); done
build_args=(--build-arg "BASE_IMAGE=$BASE")
if compgen -G "$TORCH_WHEEL_DIR/torch-*+cpu-*.whl" >/dev/null; then
    build_args+=(--build-arg "TORCH_SOURCE=--no-index --find-links $TORCH_WHEEL_DIR")
fi

say "building $IMAGE from docker/Dockerfile.cpu"
start=$SECONDS
podman build --layers -f docker/Dockerfile.cpu "${build_args[@]}" "${mounts[@]}" -t "$IMAGE" .
say "built $IMAGE in $((SECONDS - start)) s, $(podman image inspect --format '{{.Size}}' "$IMAGE" \
    | awk '{printf "%.0f MB", $1 / 1e6}')"
podman run --rm "$IMAGE" vad --help >/dev/null
say "vad --help runs in $IMAGE"
echo "$IMAGE"
