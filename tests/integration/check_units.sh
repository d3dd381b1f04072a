#!/bin/sh
# Checks the systemd units in deploy/systemd with `systemd-analyze verify`.
#
# usage: check_units.sh [BIN_DIR]
#
# The units are copied to a temp dir and their ExecStart binaries pointed at BIN_DIR (the
# build dir: BIN_DIR/<binary> or BIN_DIR/*/<binary>, e.g. build/broker/kefu-broker); a binary
# that is not built yet is replaced by /bin/true so the rest of the unit is still checked.
# Template units are verified as instance "0". Fails on any complaint that names one of our
# units, and when a unit lacks one of the directives DESIGN §5 requires; complaints about
# other units on this machine are ignored. Exits 77 (skip) without systemd-analyze.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../deploy/systemd" && pwd)
bindir=${1:-}
analyze=$(command -v systemd-analyze || true)
if [ -z "$analyze" ]; then
    echo "check_units: systemd-analyze not found, skipping"
    exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0

# find_bin NAME: path of the built binary NAME under $bindir, or nothing
find_bin() {
    [ -n "$bindir" ] && [ -d "$bindir" ] || return 0
    if [ -x "$bindir/$1" ] && [ -f "$bindir/$1" ]; then
        echo "$bindir/$1"
        return 0
    fi
    find "$bindir" -maxdepth 3 -type f -name "$1" -perm -u+x 2>/dev/null | head -n 1
}

# require FILE LINE...: every LINE must appear verbatim in FILE
require() {
    f=$1
    shift
    for line in "$@"; do
        if ! grep -qxF -- "$line" "$f"; then
            echo "FAIL $(basename "$f"): missing '$line'"
            fail=1
        fi
    done
}

# verify UNIT_ARG...: runs systemd-analyze verify, fails on lines that name a kefu unit
verify() {
    out=$(SYSTEMD_UNIT_PATH="$tmp:" "$analyze" verify "$@" 2>&1) && rc=0 || rc=$?
    bad=$(printf '%s\n' "$out" | grep -E "kefu[^ :]*\.(service|target)|$tmp" || true)
    if [ -n "$bad" ]; then
        printf '%s\n' "$bad"
        return 1
    fi
    if [ "$rc" -ne 0 ] && [ -n "$out" ]; then
        echo "check_units: note: systemd-analyze exited $rc about other units:"
        printf '%s\n' "$out" | sed 's/^/    /'
    fi
    return 0
}

# Self-test: a broken unit must be reported, or this script could never fail.
printf '[Unit]\nDescription=x\n[Service]\nType=notfy\nExecStart=/bin/true\n' \
    >"$tmp/kefu-selftest.service"
if verify "$tmp/kefu-selftest.service" >/dev/null; then
    echo "FAIL: systemd-analyze verify does not report a broken unit here; cannot check"
    exit 1
fi
rm -f "$tmp/kefu-selftest.service"

units=""
for f in "$src"/*.service "$src"/*.target; do
    [ -f "$f" ] || continue
    name=$(basename "$f")
    cp "$f" "$tmp/$name"
    case $name in
    *.target) units="$units $tmp/$name"; continue ;;
    esac
    bin=$(sed -n 's|^ExecStart=/usr/bin/\([^ ]*\).*|\1|p' "$f")
    # shellcheck disable=SC2016 # $MAINPID is literal unit text
    require "$f" Type=notify NotifyAccess=main WatchdogSec=30 Restart=on-failure RestartSec=1 \
        'ExecReload=/bin/kill -HUP $MAINPID' TimeoutStopSec=10 NoNewPrivileges=yes \
        ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes \
        ProtectKernelTunables=yes ProtectKernelModules=yes ProtectControlGroups=yes \
        'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' RestrictNamespaces=yes \
        LockPersonality=yes MemoryDenyWriteExecute=yes SystemCallArchitectures=native \
        CapabilityBoundingSet= PartOf=kefu.target WantedBy=kefu.target Wants=network-online.target
    case $name in
    *@.service) require "$f" "ExecStart=/usr/bin/$bin -c /etc/kefu/kefu.conf -i %i" ;;
    *) require "$f" "ExecStart=/usr/bin/$bin -c /etc/kefu/kefu.conf" ;;
    esac
    if [ -z "$bin" ]; then
        echo "FAIL $name: ExecStart is not /usr/bin/<binary>"
        fail=1
        continue
    fi
    path=$(find_bin "$bin")
    echo "$name: ExecStart ${path:-/bin/true (kefu binary $bin not built)}"
    sed -i "s|^ExecStart=/usr/bin/$bin|ExecStart=${path:-/bin/true}|" "$tmp/$name"
    case $name in
    *@.service) units="$units $tmp/${name%@.service}@0.service" ;;
    *) units="$units $tmp/$name" ;;
    esac
done
require "$src/kefu.target" WantedBy=multi-user.target

# shellcheck disable=SC2086 # word splitting of $units is intended (no spaces in paths)
if ! verify $units; then
    fail=1
fi
if [ "$fail" -ne 0 ]; then
    echo "check_units: FAILED"
    exit 1
fi
echo "check_units: ok ($(echo "$units" | wc -w) units)"
