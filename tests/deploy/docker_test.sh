#!/usr/bin/env bash
# Checks the Dockerfile against the real build (no Docker daemon is needed):
#  - the build stage runs the commands CI runs (scripts/install-deps.sh, scripts/build.sh);
#  - every path it copies out of build/ exists in this build;
#  - the runtime stage installs exactly the Debian packages the binaries' shared libraries come
#    from (none missing, none unused), and each is a real Debian 12 package;
#  - the image runs as the non-root user the Kubernetes manifests expect.
# When a Docker daemon is reachable it also builds the image and runs a binary in it.
# Usage: docker_test.sh <repo root> <build dir>
set -uo pipefail
ROOT=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${2:-$ROOT/build}
DOCKERFILE="$ROOT/Dockerfile"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

[[ -f "$DOCKERFILE" ]] || { echo "FAIL: no Dockerfile at $DOCKERFILE"; exit 1; }
# Joined logical lines (backslash continuations folded), comments dropped.
logical=$(sed -e 's/#.*$//' "$DOCKERFILE" | sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta')
build_stage=$(awk '/^FROM .* AS build/{s=1} /^FROM .* AS runtime/{s=0} s' <<<"$logical")
runtime_stage=$(awk '/^FROM .* AS runtime/{s=1} s' <<<"$logical")
[[ -n "$build_stage" ]] || fail "no 'FROM ... AS build' stage"
[[ -n "$runtime_stage" ]] || fail "no 'FROM ... AS runtime' stage"

# 1. The build stage runs CI's commands.
for cmd in ./scripts/install-deps.sh ./scripts/build.sh; do
  if grep -qE "^RUN .*${cmd//./\\.}" <<<"$build_stage"; then ok "build stage runs $cmd"; else fail "build stage does not run $cmd"; fi
done
grep -q 'exec ./scripts/test.sh' "$ROOT/.ci/run" || fail ".ci/run no longer calls ./scripts/test.sh"
grep -q 'scripts/install-deps.sh' "$ROOT/scripts/test.sh" && grep -q 'scripts/build.sh' "$ROOT/scripts/test.sh" \
  || fail "scripts/test.sh no longer runs install-deps.sh and build.sh"

# 2. Every build output the Dockerfile copies exists.
mapfile -t outputs < <(grep -oE '(^| )build/[A-Za-z0-9_./-]+' <<<"$build_stage" | tr -d ' ' | sort -u)
((${#outputs[@]} >= 7)) || fail "expected the six services and the token tool among the copied outputs, found ${#outputs[@]}"
binaries=()
for out in "${outputs[@]}"; do
  path="$BUILD/${out#build/}"
  if [[ -d "$path" ]]; then
    :  # a directory of files (the web console)
  elif [[ -f "$path" ]]; then
    [[ -x "$path" && "$out" != *.pb ]] && binaries+=("$path")
  else
    fail "the Dockerfile copies $out but the build has no $path"
  fi
done
for svc in clusters enterprises support promotion talent gateway; do
  printf '%s\n' "${outputs[@]}" | grep -q "/clustergov-$svc\$" || fail "the image lacks clustergov-$svc"
done
ok "${#outputs[@]} build outputs copied, ${#binaries[@]} executables"

# 3. Runtime packages = packages owning the binaries' shared libraries.
owner() {  # Debian package owning a library path (usrmerge: /lib is /usr/lib)
  local f=$1 real
  real=$(readlink -f "$f")
  for cand in "$f" "/usr$f" "$real" "/usr$real"; do
    local p
    p=$(dpkg -S "$cand" 2>/dev/null | head -n1) && [[ -n "$p" ]] && { echo "${p%%:*}"; return; }
  done
  echo "UNOWNED:$f"
}
mapfile -t needed < <(for b in "${binaries[@]}"; do ldd "$b"; done | awk '$3 ~ /^\// {print $3}' | sort -u |
  while read -r lib; do owner "$lib"; done | sed 's/:amd64$//' | sort -u)
install_line=$(grep -E '^RUN .*apt-get install' <<<"$runtime_stage" | head -n1)
mapfile -t listed < <(sed -e 's/.*apt-get install//' -e 's/&&.*//' <<<"$install_line" | tr ' ' '\n' |
  grep -E '^[a-z0-9][a-z0-9.+-]+$' | sort -u)
((${#listed[@]} > 0)) || fail "no apt-get install in the runtime stage"
base_image_packages=" libc6 libgcc-s1 "   # essential in every Debian image
for p in "${needed[@]}"; do
  [[ "$p" == UNOWNED:* ]] && { fail "no Debian package owns ${p#UNOWNED:}"; continue; }
  [[ "$base_image_packages" == *" $p "* ]] && continue
  printf '%s\n' "${listed[@]}" | grep -qx "$p" || fail "runtime stage misses $p (a binary links a library from it)"
done
for p in "${listed[@]}"; do
  [[ "$p" == ca-certificates ]] && continue
  printf '%s\n' "${needed[@]}" | grep -qx "$p" || fail "runtime stage installs $p, which no binary needs"
  apt-cache show "$p" >/dev/null 2>&1 || fail "$p is not a known Debian package"
done
ok "runtime packages checked: ${listed[*]}"

# 4. Non-root user matching the manifests.
user=$(grep -E '^USER ' <<<"$runtime_stage" | tail -n1 | awk '{print $2}')
[[ "$user" =~ ^[1-9][0-9]*:[1-9][0-9]*$ ]] || fail "runtime USER must be numeric uid:gid and not root (got '$user')"
uid=${user%%:*}
if grep -rqE "runAsUser: $uid\b" "$ROOT/deploy/k8s/base"; then ok "USER $user matches the manifests"; else fail "no manifest runs as uid $uid"; fi
grep -q 'clustergov_descriptors.pb' <<<"$runtime_stage" || fail "the gateway's descriptor set is not in the image"
grep -q '/usr/share/clustergov/console' <<<"$runtime_stage" || fail "the web console is not in the image"

# 5. A real image build when a daemon is reachable (not on the CI machine, which has none).
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  tag="clustergov:test-$$"
  if docker build -q -t "$tag" "$ROOT" >/dev/null; then
    docker run --rm "$tag" /usr/local/bin/clustergov-clusters --version >/dev/null 2>&1 \
      || fail "clustergov-clusters does not run in the image"
    [[ $(docker run --rm "$tag" id -u) == "$uid" ]] || fail "the image does not run as $uid"
    docker rmi -f "$tag" >/dev/null 2>&1
  else
    fail "docker build failed"
  fi
else
  echo "note: no Docker daemon here; the image itself was not built (the checks above ran)"
fi

if ((failures > 0)); then echo "$failures check(s) failed"; exit 1; fi
echo "Dockerfile checks passed"
