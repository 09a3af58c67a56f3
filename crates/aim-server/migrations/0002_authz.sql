-- AIM server schema, version 2: authorization hardening (issue 10).
-- Portable SQL (SQLite and PostgreSQL).

-- API keys may have the role `registration`: such a key registers agents and does nothing else.
-- The role CHECK is widened by rebuilding the table (nothing references api_keys by foreign key).
CREATE TABLE api_keys_v2 (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member', 'viewer', 'registration')),
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
INSERT INTO api_keys_v2 (id, organization_id, user_id, name, role, key_hash, prefix, created_at, last_used_at, revoked_at)
    SELECT id, organization_id, user_id, name, role, key_hash, prefix, created_at, last_used_at, revoked_at FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE api_keys_v2 RENAME TO api_keys;

-- The API key that registered the agent: it may never approve that agent's requests. NULL for
-- agents registered before version 2 until the start-up backfill reads it from the audit log.
ALTER TABLE agents ADD COLUMN registered_by_key TEXT;
-- Labels only admins set (JSON array of strings); policies select agents by id or label.
ALTER TABLE agents ADD COLUMN labels TEXT NOT NULL DEFAULT '[]';
-- The name's confusable skeleton (UTS #39 of its NFKC form, lowercased): unique in practice per
-- organization (checked in the registering transaction). NULL until the start-up backfill.
ALTER TABLE agents ADD COLUMN name_key TEXT;
CREATE INDEX agents_name_key ON agents (organization_id, name_key);
