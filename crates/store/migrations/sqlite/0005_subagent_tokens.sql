-- Sub-agent tokens must be listed back to their parent agent, so besides the SHA-256
-- lookup hash they keep an encrypted copy (decisions.md 35). NULL for ordinary agents.
ALTER TABLE workspace_agents ADD COLUMN auth_token_encrypted BLOB;
