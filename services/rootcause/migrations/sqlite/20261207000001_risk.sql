-- Risks read the fault history of the last days (risk.lookback_days) by start time.
CREATE INDEX IF NOT EXISTS history_started_at ON history (started_at);
