#!/usr/bin/env bash
# The Debian packages `make test` needs, installed when run as root and missing.
#
#   tools/test-deps.sh          install what is missing (root), or print the apt-get line and fail
#   tools/test-deps.sh --list   print the package list
#
# Not as root, it prints the one `apt-get install` line that is needed and exits 1 before
# anything else runs: tests that need a browser, nginx or Tor fail rather than skip, so a
# missing package is an error here, not later. PostgreSQL is started by tools/with-postgres.sh.
set -euo pipefail

PACKAGES=(
    chromium                                # browser tests (Playwright drives Debian's build)
    firefox-esr                             # browser tests: Tor Browser's base, over Marionette
    age                                     # bench and interop: the age reference tool
    gpg gpg-agent                           # the daily digest's OpenPGP keys: checked, encrypted to, decrypted
    nginx libnginx-mod-http-headers-more-filter  # tests/deploy: the real nginx site
    tor                                     # tests/deploy: torrc checked by tor --verify-config
    strace                                  # tests/watch.py: every write and socket call, watched as it happens
    systemd                                 # systemd-analyze verify/security of the units
    shellcheck rsync                        # tests/deploy: install.sh lint and copy
    debootstrap iproute2                    # make test-install: the installer in fresh chroots
    postgresql                              # tools/with-postgres.sh: a throwaway cluster if none answers
    redis-server                            # shared app limits (tests/server/test_limits.py) and its shipped config (tests/deploy)
    # the desk's safe copies (tests/desk/safe): DESK_PACKAGES of docs/DESK.md, in the same order
    # (tests/desk/safe/test_doctor.py checks that they agree): the sandbox, renderers, OCR, mat2
    bubblewrap util-linux python3 python3-gi python3-seccomp gir1.2-gdkpixbuf-2.0
    librsvg2-common poppler-utils qpdf tesseract-ocr tesseract-ocr-eng mat2
    libimage-exiftool-perl libreoffice-writer-nogui libreoffice-calc-nogui
    libreoffice-impress-nogui libreoffice-draw-nogui fonts-dejavu-core
)

if [ "${1:-}" = "--list" ]; then
    printf '%s\n' "${PACKAGES[@]}"
    exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "test-deps: these Debian packages are missing; install them, then run make test again:" >&2
    echo "  sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
