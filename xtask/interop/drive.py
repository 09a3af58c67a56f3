"""Drive the official AIM Python SDK (pinned) against our server, through the SDK's own public
functions, unmodified. Every step checks the SDK's result and the server's persisted state; the
first difference fails the run with a clear message (exit 1).

Environment (set by run.sh): AIM_URL, AIM_ADMIN_KEY, AIM_SDK_VERSION, HOME (a scratch dir).
"""

import importlib.metadata
import json
import os
import sys
import threading
import time
import traceback
import uuid

import requests

URL = os.environ["AIM_URL"].rstrip("/")
ADMIN_KEY = os.environ["AIM_ADMIN_KEY"]
PINNED = os.environ["AIM_SDK_VERSION"]
AGENT = "interop-agent"
ADMIN_EMAIL = "admin@interop.test"

STEPS = []


class Broken(Exception):
    """Compatibility broke."""


def check(cond, message):
    if not cond:
        raise Broken(message)


def step(name):
    def wrap(fn):
        STEPS.append((name, fn))
        return fn
    return wrap


def admin(method, path, body=None):
    r = requests.request(method, URL + path, headers={"X-API-Key": ADMIN_KEY}, json=body, timeout=10)
    try:
        payload = r.json()
    except ValueError:
        payload = r.text
    return r.status_code, payload


def requests_status(method, path, key):
    r = requests.request(method, URL + path, headers={"X-API-Key": key}, timeout=10)
    return r.status_code, r.text


def admin_ok(method, path, body=None, want=(200, 201)):
    status, payload = admin(method, path, body)
    check(status in want, f"{method} {path} answered {status}: {payload}")
    return payload


class Approver(threading.Thread):
    """A person who approves (or denies) the agent's next pending verification."""

    def __init__(self, agent_id, approve, reason):
        super().__init__(daemon=True)
        self.agent_id, self.approve, self.reason = agent_id, approve, reason
        self.decided = None
        self.error = None

    def run(self):
        try:
            deadline = time.time() + 30
            while time.time() < deadline:
                listing = admin_ok("GET", f"/api/v1/verifications?status=pending&agent_id={self.agent_id}")
                if listing["verifications"]:
                    vid = listing["verifications"][0]["id"]
                    verb = "approve" if self.approve else "deny"
                    self.decided = admin_ok("POST", f"/api/v1/verifications/{vid}/{verb}", {"reason": self.reason})
                    return
                time.sleep(0.2)
            self.error = "no pending verification appeared within 30 s"
        except Exception as e:  # reported by the main thread
            self.error = f"{type(e).__name__}: {e}"


def main():
    from aim_sdk import register_agent
    from aim_sdk.detection import MCPDetector, track_mcp_call
    from aim_sdk.exceptions import ActionDeniedError, AuthenticationError

    ctx = {}

    @step("an admin creates a member key for the agent's process (SDK 0.5.3 polls and reports with it)")
    def _():
        # SDK 0.5.3 in API-key mode also polls approvals and reports results with its API key, so
        # a registration-only key breaks it (known gap, issue 10/13); a member key works, and it
        # still cannot approve the agent it registered (aim-server tests/api/authz.rs).
        key = admin_ok("POST", "/api/v1/api-keys", {"name": "interop agents", "role": "member"})
        check(key["role"] == "member", f"key role {key['role']}")
        ctx["reg_key"] = key["api_key"]

    @step("pinned SDK version installed")
    def _():
        got = importlib.metadata.version("aim-sdk")
        check(got == PINNED, f"aim-sdk {got} installed, {PINNED} pinned")

    @step("register_agent in API-key mode (server-generated key returned once)")
    def _():
        client = register_agent(
            AGENT, aim_url=URL, api_key=ctx["reg_key"], auto_detect=False,
            capabilities=["read_database", "delete_file"], description="interop test agent",
        )
        check(uuid.UUID(client.agent_id), "agent_id is not a UUID")
        check(client.signing_key is not None, "the SDK did not load the returned private key")
        ctx["agent_id"] = client.agent_id
        creds_path = os.path.join(os.environ["HOME"], ".aim", "agents", f"{AGENT}.json")
        check(os.path.exists(creds_path), f"SDK credentials file missing at {creds_path}")
        with open(creds_path) as f:
            creds = json.load(f)
        check(creds.get("agent_id") == client.agent_id, "stored credentials name another agent")
        check(len(creds.get("private_key", "")) == 88, "the stored private key is not the 64-byte form")
        agent = admin_ok("GET", f"/api/v1/agents/{client.agent_id}")
        check(agent["status"] == "verified", f"agent status {agent['status']}")
        check(agent["public_key"] == client.public_key, "server holds a different public key")
        check(sorted(agent["capabilities"]) == ["delete_file", "read_database"], f"declared: {agent['capabilities']}")
        check(agent["granted_capabilities"] == [], "declared capabilities were granted")
        check(creds["private_key"] not in json.dumps(agent), "the server returned the private key again")

    @step("a person grants capabilities; register_agent reloads the cached agent with the API key")
    def _():
        for cap in ("read_database", "delete_file"):
            admin_ok("POST", f"/api/v1/agents/{ctx['agent_id']}/capabilities", {"capability": cap, "reason": "interop"})
        client = register_agent(AGENT, aim_url=URL, api_key=ctx["reg_key"])
        check(client.agent_id == ctx["agent_id"], "the cached agent was not reused")
        check(client.api_key == ctx["reg_key"] and client.signing_key is not None, "reloaded client lacks key or API key")
        ctx["client"] = client

    @step("verify_action approved (non-ASCII context, floats, null resource)")
    def _():
        client = ctx["client"]
        r = client.verify_action("read_database", resource="users", context={"query": "SELECT 1", "ratio": 0.5, "f": 100.0, "u": "café"})
        check(r.get("verified") is True, f"not verified: {r}")
        check(r.get("approved_by") == "system", f"approved_by {r.get('approved_by')}")
        v = admin_ok("GET", f"/api/v1/verifications/{r['verification_id']}")
        check(v["status"] == "approved", f"persisted status {v['status']}")
        check(v["context"] == {"query": "SELECT 1", "ratio": 0.5, "f": 100.0, "u": "café"}, f"context {v['context']}")
        ctx["approved_id"] = r["verification_id"]
        r = client.verify_action("read_database")
        check(r.get("verified") is True, f"null resource not verified: {r}")

    @step("log_action_result records the outcome beside the decision")
    def _():
        client = ctx["client"]
        client.log_action_result(ctx["approved_id"], True, result_summary="42 rows")
        v = admin_ok("GET", f"/api/v1/verifications/{ctx['approved_id']}")
        check(v["result"] == "success", f"result {v['result']}")
        check(v["result_summary"] == "42 rows", f"result_summary {v['result_summary']}")
        check(v["status"] == "approved", "the result overwrote the decision")

    @step("verify_action denied: the SDK surfaces the denial and its reason")
    def _():
        client = ctx["client"]
        try:
            client.verify_action("send_email", resource="boss@example.com")
        except (AuthenticationError, ActionDeniedError) as e:
            text = str(e)
            check("has no capability 'send_email'" in text, f"denial reason not surfaced: {text}")
            check("aim capabilities grant" in text, f"denial does not say what to change: {text}")
            ctx["denial_type"] = type(e).__name__
        else:
            raise Broken("a denied action was not refused by the SDK")
        listing = admin_ok("GET", f"/api/v1/verifications?status=denied&agent_id={ctx['agent_id']}")
        check(listing["total"] == 1, f"denied verifications: {listing['total']}")

    @step("pending, then approved by a person while the SDK polls")
    def _():
        client = ctx["client"]
        person = Approver(ctx["agent_id"], True, "scheduled cleanup")
        person.start()
        started = time.time()
        r = client.verify_action("delete_file", resource="/tmp/report.pdf", timeout_seconds=60)
        person.join(5)
        check(person.error is None, f"approver: {person.error}")
        check(r.get("verified") is True, f"not approved after the person approved: {r}")
        check(r.get("approved_by") == ADMIN_EMAIL, f"approved_by {r.get('approved_by')}")
        check(time.time() - started < 40, "polling took too long")
        v = admin_ok("GET", f"/api/v1/verifications/{r['verification_id']}")
        check(v["status"] == "approved" and v["decided_by"] == ADMIN_EMAIL, f"persisted {v['status']} by {v['decided_by']}")

    @step("pending, then denied by a person: ActionDeniedError with the person's reason")
    def _():
        client = ctx["client"]
        person = Approver(ctx["agent_id"], False, "never delete /etc")
        person.start()
        try:
            client.verify_action("delete_file", resource="/etc/passwd", timeout_seconds=60)
        except ActionDeniedError as e:
            check("never delete /etc" in str(e), f"reason lost: {e}")
        else:
            raise Broken("a denied pending action was not refused")
        person.join(5)
        check(person.error is None, f"approver: {person.error}")

    @step("perform_action decorator: verifies, runs, reports the result")
    def _():
        client = ctx["client"]

        @client.perform_action("read_database", resource="orders")
        def count_orders():
            return 42

        check(count_orders() == 42, "decorated function did not return its value")
        listing = admin_ok("GET", f"/api/v1/verifications?agent_id={ctx['agent_id']}&status=approved")
        latest = listing["verifications"][0]
        check(latest["resource"] == "orders" and latest["result"] == "success", f"latest: {latest}")

    @step("request_capability creates a pending request for a person")
    def _():
        client = ctx["client"]
        r = client.request_capability("send_email", "needs to send the weekly digest")
        check(r.get("status") == "pending", f"request: {r}")
        listing = admin_ok("GET", "/api/v1/capability-requests?status=pending")
        check(any(q["capability_type"] == "send_email" for q in listing["requests"]), "request not stored")

    @step("report_capabilities never grants (no self-granted capabilities)")
    def _():
        client = ctx["client"]
        client.report_capabilities(["execute_command"])
        caps = admin_ok("GET", f"/api/v1/agents/{ctx['agent_id']}/capabilities")
        check("execute_command" in [c["capability"] for c in caps["declared"]], "declaration not recorded")
        check("execute_command" not in [c["capability"] for c in caps["granted"]], "the agent granted itself a capability")
        try:
            client.verify_action("execute_command", resource="rm -rf /")
        except (AuthenticationError, ActionDeniedError) as e:
            check("execute_command" in str(e), f"unexpected denial: {e}")
        else:
            raise Broken("a self-reported capability was honoured")

    @step("register_mcp attaches a registered MCP server")
    def _():
        client = ctx["client"]
        mcp = admin_ok("POST", "/api/v1/mcp-servers", {"name": "filesystem", "url": "stdio://server-filesystem"})
        r = client.register_mcp(mcp["id"], detection_method="manual", confidence=100.0)
        check(r.get("success") is True, f"register_mcp: {r}")
        check("filesystem" in r.get("talks_to", []), f"talks_to: {r}")

    @step("report_detections: declared MCP accepted, undeclared MCP raises a drift alert")
    def _():
        client = ctx["client"]
        track_mcp_call("filesystem", "read_file")
        track_mcp_call("filesystem", "list_directory")
        track_mcp_call("mcp-server-fetch", "fetch")
        events = MCPDetector.get_runtime_detections()
        check(len(events) == 2, f"runtime detections: {events}")
        r = client.report_detections(events)
        check(r.get("success") is True and r.get("detectionsProcessed") == 2, f"report: {r}")
        check(r.get("driftDetected") == ["mcp-server-fetch"], f"drift: {r}")
        alerts = admin_ok("GET", f"/api/v1/alerts?agent_id={ctx['agent_id']}")
        check(any(a["alert_type"] == "configuration_drift" for a in alerts["alerts"]), "no drift alert")
        r = client.report_sdk_integration(sdk_version=f"aim-sdk-python@{PINNED}")
        check(r.get("success") is True, f"sdk integration report: {r}")

    @step("everything is audited, and the trust score reflects it")
    def _():
        # Records about the agent (as actor or target) and about its verifications.
        page = admin_ok("GET", "/api/v1/audit-logs?limit=1000")
        mine = [e for e in page["entries"]
                if ctx["agent_id"] in (e["actor_id"], e["target_id"], e["details"].get("agent_id"))]
        actions = {e["action"] for e in mine}
        for want in ("agent.registered", "capability.granted", "verification.approved", "verification.denied",
                     "verification.pending", "verification.approved_by_person", "verification.denied_by_person",
                     "verification.result_recorded", "capability.requested", "capability.declared",
                     "agent.mcp_servers_declared", "detection.reported"):
            check(want in actions, f"audit log lacks {want}: {sorted(actions)}")
        trust = admin_ok("GET", f"/api/v1/agents/{ctx['agent_id']}/trust-score")
        check(trust["factors"]["drift_detection"] < 1.0, f"drift not reflected: {trust}")
        check(0.0 < trust["score"] < 1.0, f"score {trust['score']}")

    for name, fn in STEPS:
        t0 = time.time()
        try:
            fn()
        except Broken as e:
            print(f"FAIL {name}: {e}", flush=True)
            return 1
        except Exception as e:
            print(f"FAIL {name}: unexpected {type(e).__name__}: {e}", flush=True)
            traceback.print_exc()
            return 1
        print(f"ok   {name} ({time.time() - t0:.1f}s)", flush=True)
    print(f"interop: aim-sdk {PINNED}: all {len(STEPS)} steps passed "
          f"(denials surface as {ctx.get('denial_type')})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
