#!/usr/bin/env bash
# Installs the Debian packages the tests use when they are missing: arm-none-eabi-gcc builds
# the RP2040/Cortex-M native modules, qemu-arm runs those kernels in the native tests, Node.js
# and npm run the emulated Pico (rp2040js, installed by `make pico-setup`). As root
# (or with password-less sudo) it installs them; otherwise it says, in one line, what is
# missing and the command that installs it, and the tests that need them skip saying why.
set -u
declare -A packages=([arm-none-eabi-gcc]=gcc-arm-none-eabi [qemu-arm]=qemu-user [node]=nodejs
                     [npm]=npm)
missing=()
for tool in "${!packages[@]}"; do
  command -v "$tool" >/dev/null || missing+=("${packages[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then
  sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "system deps: missing ${missing[*]}; install with: sudo apt-get install ${missing[*]}" \
       "(the tests that need them will skip)"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "system deps: missing ${missing[*]} and no apt-get here; install them with your" \
       "package manager (the tests that need them will skip)"
  exit 0
fi
echo "system deps: installing ${missing[*]} (apt-get; log in .cache/system_deps.log)"
mkdir -p .cache
if ! { "${sudo[@]}" apt-get update -qq \
       && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}"; \
     } >.cache/system_deps.log 2>&1; then
  tail -5 .cache/system_deps.log
  echo "system deps: could not install ${missing[*]} (the tests that need them will skip)"
fi
exit 0
