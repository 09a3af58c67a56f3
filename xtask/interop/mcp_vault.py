"""Drive `aim mcp vault` with the official Python MCP SDK (`mcp` from PyPI, pinned), as Claude
Desktop would: the SDK spawns the server over stdio. Stores, recalls, searches, is refused a
gated recall with a reason, and gets MCP errors (not crashes, nothing lost) for unknown tools,
wrong argument types and huge arguments. The first difference fails the run (exit 1).

Environment (set by run.sh): AIM_BIN (the `aim` binary), AIM_MCP_WORK (a scratch directory),
AIM_MCP_SDK_VERSION.
"""

import importlib.metadata
import os
import subprocess
import sys
import traceback

import anyio
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.types import Implementation

AIM = os.environ["AIM_BIN"]
WORK = os.environ["AIM_MCP_WORK"]
PINNED = os.environ["AIM_MCP_SDK_VERSION"]
VAULT = os.path.join(WORK, "vault.db")
KEY = os.path.join(WORK, "agent.key")
CLIENT = "python-mcp-interop"
DENIED = -32010
INVALID_PARAMS = -32602


class Broken(Exception):
    """Compatibility broke."""


def check(cond, message):
    if not cond:
        raise Broken(message)


def ok(name):
    print(f"ok {name}", flush=True)


def aim(*args):
    r = subprocess.run([AIM, *args], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, f"aim {' '.join(args)} failed: {r.stderr}")
    return r.stdout


async def call(session, tool, args):
    r = await session.call_tool(tool, args)
    check(not r.is_error, f"{tool} {args}: tool error {r.content}")
    check(isinstance(r.structured_content, dict), f"{tool}: no structured answer: {r}")
    return r.structured_content


async def refused(session, tool, args):
    """The call must end with an MCP error (JSON-RPC error, or a tool result with isError)."""
    try:
        r = await session.call_tool(tool, args)
    except MCPError as e:
        return e.code, e.message
    check(r.is_error, f"{tool} {str(args)[:80]}: expected an error, got {r}")
    return None, " ".join(getattr(c, "text", "") for c in r.content)


async def drive(session):
    init = await session.initialize()
    check(init.server_info.name == "aim-vault", f"server name {init.server_info}")
    ok("initialize (aim-vault)")

    tools = sorted(t.name for t in (await session.list_tools()).tools)
    check(tools == ["list", "recall", "search", "store", "tombstone"], f"tools {tools}")
    ok("list_tools")

    stored = await call(session, "store", {
        "content": "the user prefers jasmine tea", "classification": 1, "tags": ["prefs"],
    })
    mid = stored["id"]
    check(stored["classification"] == 1, f"store answer {stored}")
    ok("store")

    recalled = await call(session, "recall", {"id": mid})
    check(recalled["content"] == "the user prefers jasmine tea", f"recall {recalled}")
    prov = recalled["provenance"]
    check(prov["mcp_client"]["name"] == CLIENT, f"provenance {prov}")
    check(prov["tool"] == "store", f"provenance {prov}")
    ok("recall (with sealed provenance naming this client)")

    found = await call(session, "search", {"words": "jasmine"})
    check([m["id"] for m in found["memories"]] == [mid], f"search {found}")
    check("jasmine" not in str(found), f"search leaked content: {found}")
    ok("search (ids and metadata only)")

    sealed = (await call(session, "store", {
        "content": "the incident runbook", "classification": 3,
    }))["id"]
    code, message = await refused(session, "recall", {"id": sealed, "justification": "incident 42"})
    check(code == DENIED, f"gated recall: code {code}: {message}")
    check("approval" in message and "--aim-agent" in message, f"gated recall reason: {message}")
    check("runbook" not in message, "a refused recall leaked content")
    code, message = await refused(session, "recall", {
        "id": (await call(session, "store", {"content": "bank: first", "classification": 2}))["id"],
    })
    check(code == DENIED and "justification" in message, f"level 2 without justification: {message}")
    ok("gated recalls refused with what is needed")

    code, message = await refused(session, "format_disk", {"device": "/dev/sda"})
    check("not found" in message, f"unknown tool: {code} {message}")
    ok("unknown tool -> MCP error")

    for tool, args in [("store", {"content": 42}), ("recall", {"id": ["x"]}),
                       ("search", {"words": {"a": 1}}), ("store", {"content": "x", "classification": "high"})]:
        code, message = await refused(session, tool, args)
    code, message = await refused(session, "store", {"content": "x", "classification": 9})
    check(code == INVALID_PARAMS, f"classification 9: {code} {message}")
    ok("wrong argument types -> MCP errors")

    code, message = await refused(session, "store", {"content": "a" * (2 << 20)})
    check(code == INVALID_PARAMS and "limit" in message, f"huge content: {code} {message}")
    code, message = await refused(session, "search", {"words": "w " * 10000})
    check(code == INVALID_PARAMS, f"huge search: {code} {message}")
    ok("huge arguments -> MCP errors")

    listed = await call(session, "list", {"limit": 100})
    ids = {m["id"] for m in listed["memories"]}
    check(mid in ids and sealed in ids and len(ids) == 3, f"after the errors: {listed}")
    again = await call(session, "recall", {"id": mid})
    check(again["content"] == "the user prefers jasmine tea", "content changed")
    ok("still serving, nothing lost")


async def main():
    version = importlib.metadata.version("mcp")
    check(version == PINNED, f"mcp {version} installed, {PINNED} pinned")
    aim("vault", "--vault", VAULT, "init")
    aim("vault", "--vault", VAULT, "profile", "create", "agent", "--with-keyfile", KEY, "--new-keyfile")
    params = StdioServerParameters(
        command=AIM,
        args=["mcp", "vault", "--vault", VAULT, "--profile", "agent", "--keyfile", KEY],
        env={"AIM_LOG": "warn"},
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, client_info=Implementation(name=CLIENT, version=version)) as session:
            with anyio.fail_after(120):
                await drive(session)


if __name__ == "__main__":
    try:
        anyio.run(main)
    except Broken as e:
        print(f"FAIL {e}", flush=True)
        sys.exit(1)
    except Exception:
        traceback.print_exc()
        sys.exit(1)
    print("interop: MCP vault PASS", flush=True)
