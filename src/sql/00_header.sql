-- hb_lifecycle: heartbeat fleets on PostgreSQL.
-- This script is built from src/sql/*.sql, one object per file, in name order.
\echo Use "CREATE EXTENSION hb_lifecycle" (or ALTER EXTENSION hb_lifecycle UPDATE) to load this file. \quit
