#!/usr/bin/env bash
# Interoperability test: the official AIM Python SDK from PyPI (pinned), unmodified, driven
# against our `aim server` on a free loopback port with a scratch data directory and HOME; then
# the official Python MCP SDK (pinned) spawning `aim mcp vault` over stdio (mcp_vault.py).
# Run by `cargo xtask interop` and `cargo xtask ci`. Exits non-zero, with the failing step, when
# compatibility breaks. See docs/server.md ("Python SDK interop") for what the SDK sends.
set -euo pipefail

SDK_VERSION="0.5.3"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$ROOT/target/interop-venv"
PYTHON="${PYTHON:-python3}"

say() { printf 'interop: %s\n' "$*"; }

command -v "$PYTHON" >/dev/null || { say "python3 is required"; exit 1; }

# 1. The pinned SDK in a virtualenv (reused when it already has the pinned version).
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" - "$SDK_VERSION" <<'EOF' 2>/dev/null
import importlib.metadata, sys
sys.exit(0 if importlib.metadata.version("aim-sdk") == sys.argv[1] else 1)
EOF
then
    say "installing aim-sdk==$SDK_VERSION from PyPI"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        -c "$ROOT/xtask/interop/constraints.txt" "aim-sdk==$SDK_VERSION"
fi

# 2. Our server binary.
say "building aim"
(cd "$ROOT" && cargo build --quiet -p aim-cli)
AIM="$TARGET_DIR/debug/aim"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/aim-interop.XXXXXX")"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "${KEEP_INTEROP_WORK:-0}" = "1" ]; then
        say "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# 3. First organization and admin key; the key is printed once, on a line of its own.
"$AIM" server init --data-dir "$WORK/data" --org-name interop --admin-email admin@interop.test \
    >"$WORK/init.txt"
ADMIN_KEY="$(grep -E '^aim_live_[A-Za-z0-9_-]{43}$' "$WORK/init.txt" | head -n 1)"
[ -n "$ADMIN_KEY" ] || { say "aim server init printed no admin key"; cat "$WORK/init.txt"; exit 1; }

# 4. The server on a free port (port 0; the bound address is read from its output).
"$AIM" server --data-dir "$WORK/data" --addr 127.0.0.1:0 --pending-ttl-secs 120 \
    >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
URL=""
for _ in $(seq 1 100); do
    URL="$(sed -n 's/^AIM server listening on \(http:\/\/[0-9.:]*\)$/\1/p' "$WORK/server.out" | head -n 1)"
    [ -n "$URL" ] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        say "the server exited"; cat "$WORK/server.err"; exit 1
    fi
    sleep 0.1
done
[ -n "$URL" ] || { say "the server did not start"; cat "$WORK/server.err"; exit 1; }
"$VENV/bin/python" - "$URL" <<'EOF'
import sys, time, urllib.request
for _ in range(100):
    try:
        if urllib.request.urlopen(sys.argv[1] + "/readyz", timeout=2).status == 200:
            sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit("server not ready")
EOF
say "server ready at $URL"

# 5. Drive the SDK with a scratch HOME (its credential files go there).
mkdir -p "$WORK/home"
status=0
HOME="$WORK/home" AIM_URL="$URL" AIM_ADMIN_KEY="$ADMIN_KEY" AIM_SDK_VERSION="$SDK_VERSION" \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    "$VENV/bin/python" "$ROOT/xtask/interop/drive.py" >"$WORK/drive.out" 2>&1 || status=$?
grep -E '^(ok |FAIL|interop:|Traceback|  File|[A-Za-z]+Error)' "$WORK/drive.out" || true
if [ "$status" -ne 0 ]; then
    say "FAILED (exit $status); full SDK output follows"
    cat "$WORK/drive.out"
    say "server log:"
    tail -n 50 "$WORK/server.err"
    exit 1
fi
# No secret may reach the server's log.
if grep -q -- "$ADMIN_KEY" "$WORK/server.err" "$WORK/server.out"; then
    say "FAILED: the admin API key appears in the server log"
    exit 1
fi
say "AIM SDK PASS"

# 6. The official Python MCP SDK (`mcp` from PyPI, pinned, own virtualenv) spawns
#    `aim mcp vault` over stdio as Claude Desktop would (docs/mcp.md).
MCP_SDK_VERSION="2.3.0"
MCP_VENV="$ROOT/target/interop-mcp-venv"
if [ ! -x "$MCP_VENV/bin/python" ]; then
    say "creating $MCP_VENV"
    "$PYTHON" -m venv "$MCP_VENV"
fi
if ! "$MCP_VENV/bin/python" - "$MCP_SDK_VERSION" <<'EOF' 2>/dev/null
import importlib.metadata, sys
sys.exit(0 if importlib.metadata.version("mcp") == sys.argv[1] else 1)
EOF
then
    say "installing mcp==$MCP_SDK_VERSION from PyPI"
    "$MCP_VENV/bin/pip" install --quiet --disable-pip-version-check \
        -c "$ROOT/xtask/interop/mcp-constraints.txt" "mcp==$MCP_SDK_VERSION"
fi
mkdir -p "$WORK/mcp"
status=0
AIM_BIN="$AIM" AIM_MCP_WORK="$WORK/mcp" AIM_MCP_SDK_VERSION="$MCP_SDK_VERSION" \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    "$MCP_VENV/bin/python" "$ROOT/xtask/interop/mcp_vault.py" >"$WORK/mcp.out" 2>&1 || status=$?
grep -E '^(ok |FAIL|interop:|Traceback|  File|[A-Za-z]+Error)' "$WORK/mcp.out" || true
if [ "$status" -ne 0 ]; then
    say "MCP FAILED (exit $status); full output follows"
    cat "$WORK/mcp.out"
    exit 1
fi
say "PASS"
