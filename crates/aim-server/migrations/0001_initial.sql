-- AIM server schema, version 1.
-- Portable SQL: runs unchanged on SQLite and PostgreSQL. Ids are TEXT (UUIDs), times are
-- BIGINT milliseconds since the Unix epoch, JSON documents are TEXT, booleans are INTEGER 0/1.

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- Bumped whenever the organization's policies or risk levels change.
    config_version BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    email TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at BIGINT NOT NULL,
    UNIQUE (organization_id, email)
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    display_name TEXT NOT NULL,
    description TEXT NOT NULL,
    agent_type TEXT NOT NULL,
    version TEXT,
    repository_url TEXT,
    documentation_url TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'verified', 'suspended', 'revoked')),
    public_key TEXT NOT NULL,
    key_created_at BIGINT NOT NULL,
    previous_public_key TEXT,
    previous_key_valid_until BIGINT,
    rotation_count INTEGER NOT NULL DEFAULT 0,
    key_generated_by_server INTEGER NOT NULL DEFAULT 0,
    trust_score DOUBLE PRECISION NOT NULL,
    verifications_approved BIGINT NOT NULL DEFAULT 0,
    verifications_denied BIGINT NOT NULL DEFAULT 0,
    results_success BIGINT NOT NULL DEFAULT 0,
    results_failure BIGINT NOT NULL DEFAULT 0,
    human_approvals BIGINT NOT NULL DEFAULT 0,
    human_denials BIGINT NOT NULL DEFAULT 0,
    alerts_raised BIGINT NOT NULL DEFAULT 0,
    drift_events BIGINT NOT NULL DEFAULT 0,
    -- Bumped whenever the agent's status, keys or grants change.
    config_version BIGINT NOT NULL DEFAULT 0,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_active_at BIGINT,
    UNIQUE (organization_id, name)
);

-- What an agent says it uses (never a grant).
CREATE TABLE agent_declared_capabilities (
    agent_id TEXT NOT NULL REFERENCES agents (id),
    capability TEXT NOT NULL,
    source TEXT NOT NULL,
    scope TEXT,
    declared_at BIGINT NOT NULL,
    PRIMARY KEY (agent_id, capability)
);

-- Capabilities granted by people.
CREATE TABLE capability_grants (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    agent_id TEXT NOT NULL REFERENCES agents (id),
    capability TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    revoked_by TEXT,
    revoked_at BIGINT
);
CREATE UNIQUE INDEX capability_grants_active ON capability_grants (agent_id, capability) WHERE revoked_at IS NULL;

CREATE TABLE capability_requests (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    agent_id TEXT NOT NULL REFERENCES agents (id),
    capability TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    requested_at BIGINT NOT NULL,
    reviewed_by TEXT,
    reviewed_at BIGINT,
    review_reason TEXT
);
CREATE INDEX capability_requests_org ON capability_requests (organization_id, status);
CREATE UNIQUE INDEX capability_requests_one_pending ON capability_requests (agent_id, capability) WHERE status = 'pending';

CREATE TABLE policies (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    priority INTEGER NOT NULL,
    action_pattern TEXT NOT NULL,
    resource_pattern TEXT NOT NULL,
    agent_pattern TEXT NOT NULL,
    effect TEXT NOT NULL CHECK (effect IN ('allow', 'deny', 'require_approval')),
    min_trust DOUBLE PRECISION,
    below_min_trust TEXT NOT NULL CHECK (below_min_trust IN ('deny', 'require_approval')),
    enabled INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (organization_id, name)
);

CREATE TABLE risk_levels (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    action_pattern TEXT NOT NULL,
    risk TEXT NOT NULL CHECK (risk IN ('low', 'medium', 'high', 'critical')),
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (organization_id, action_pattern)
);

CREATE TABLE verifications (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    agent_id TEXT NOT NULL REFERENCES agents (id),
    action_type TEXT NOT NULL,
    resource TEXT,
    context TEXT NOT NULL,
    risk TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    reason TEXT NOT NULL,
    required_trust DOUBLE PRECISION NOT NULL,
    trust_score DOUBLE PRECISION NOT NULL,
    decided_by TEXT,
    created_at BIGINT NOT NULL,
    decided_at BIGINT,
    pending_expires_at BIGINT,
    approval_expires_at BIGINT,
    result TEXT,
    result_reason TEXT,
    result_summary TEXT,
    result_error TEXT,
    result_metadata TEXT,
    result_at BIGINT,
    executed INTEGER,
    execution_reported_at BIGINT,
    -- SHA-256 of the body signature and of the request signature (if signed in headers): each
    -- signature records one verification only (the replay guard of this route).
    body_signature_hash TEXT NOT NULL UNIQUE,
    header_signature_hash TEXT UNIQUE
);
CREATE INDEX verifications_org_status ON verifications (organization_id, status, created_at);
CREATE INDEX verifications_agent ON verifications (agent_id, created_at);
CREATE INDEX verifications_pending_expiry ON verifications (status, pending_expires_at);

-- Replay guard: one row per accepted signature while it could still be replayed.
CREATE TABLE replay_guard (
    agent_id TEXT NOT NULL,
    signature_hash TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (agent_id, signature_hash)
);
CREATE INDEX replay_guard_expiry ON replay_guard (expires_at);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id TEXT,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT,
    details TEXT NOT NULL
);
CREATE INDEX audit_log_org_at ON audit_log (organization_id, at, id);

CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    agent_id TEXT,
    alert_type TEXT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at BIGINT
);
CREATE INDEX alerts_org ON alerts (organization_id, created_at);

CREATE TABLE trust_history (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    previous_score DOUBLE PRECISION,
    reason TEXT NOT NULL,
    factors TEXT NOT NULL
);
CREATE INDEX trust_history_agent ON trust_history (agent_id, at);

CREATE TABLE mcp_servers (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    url TEXT,
    description TEXT NOT NULL,
    version TEXT,
    public_key TEXT,
    capabilities TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (organization_id, name)
);

-- MCP servers an agent talks to: declared (by the agent or a person) and/or detected.
CREATE TABLE agent_mcp_servers (
    agent_id TEXT NOT NULL REFERENCES agents (id),
    mcp_name TEXT NOT NULL,
    declared INTEGER NOT NULL,
    declared_via TEXT,
    declared_at BIGINT,
    detected INTEGER NOT NULL,
    first_detected_at BIGINT,
    last_detected_at BIGINT,
    detection_methods TEXT NOT NULL,
    max_confidence DOUBLE PRECISION,
    drift_alerted INTEGER NOT NULL,
    PRIMARY KEY (agent_id, mcp_name)
);

CREATE TABLE detections (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    agent_id TEXT NOT NULL REFERENCES agents (id),
    mcp_server TEXT NOT NULL,
    method TEXT NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    details TEXT NOT NULL,
    sdk_version TEXT,
    detected_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX detections_agent ON detections (agent_id, received_at);

CREATE TABLE capability_reports (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    agent_id TEXT NOT NULL REFERENCES agents (id),
    report TEXT NOT NULL,
    risk_level TEXT,
    received_at BIGINT NOT NULL
);

-- Signed Merkle tree heads witnessed for agents (vault audit logs), per agent and log.
CREATE TABLE tree_heads (
    agent_id TEXT NOT NULL REFERENCES agents (id),
    log_id TEXT NOT NULL,
    tree_size BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    root_hash TEXT NOT NULL,
    head_timestamp BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    signature TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (agent_id, log_id, tree_size)
);

-- Keys other than its identity key that an agent declares for signing tree heads.
CREATE TABLE tree_head_keys (
    agent_id TEXT NOT NULL REFERENCES agents (id),
    public_key TEXT NOT NULL,
    declared_at BIGINT NOT NULL,
    PRIMARY KEY (agent_id, public_key)
);
