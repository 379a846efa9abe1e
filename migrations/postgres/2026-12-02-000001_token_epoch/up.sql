-- Access tokens carry the epoch they were issued in; deactivation and a password change
-- bump it, so every access token issued before stops working at once (also after a
-- reactivation), on every instance.
ALTER TABLE users ADD COLUMN token_epoch BIGINT NOT NULL DEFAULT 0;
