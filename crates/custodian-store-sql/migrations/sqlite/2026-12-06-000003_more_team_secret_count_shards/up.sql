-- Nothing changes on SQLite, which keeps one count row per team (it writes one transaction
-- at a time); this migration spreads PostgreSQL's count over more rows.
SELECT 1;
