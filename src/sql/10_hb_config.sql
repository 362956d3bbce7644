-- hb_config: one row per managed heartbeats table (the arguments of hb_manage).
-- Written only by hb_manage / hb_unmanage (as the extension's owner); kept by
-- pg_dump as extension configuration.
CREATE TABLE @extschema@.hb_config (
    parent            regclass    PRIMARY KEY,
    device_column     name        NOT NULL,
    time_column       name        NOT NULL,
    granularity       text        NOT NULL CHECK (granularity IN ('day', 'month')),
    premake           integer     NOT NULL CHECK (premake BETWEEN 0 AND 1000),
    retention         interval    NOT NULL CHECK (retention > interval '0'),
    last_status_table regclass    NOT NULL UNIQUE,
    partition_prefix  text        NOT NULL UNIQUE,
    created_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE @extschema@.hb_config IS
    'Heartbeat tables managed by hb_lifecycle (one row per hb_manage call).';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.hb_config', '');
REVOKE ALL ON @extschema@.hb_config FROM PUBLIC;
GRANT SELECT ON @extschema@.hb_config TO PUBLIC;
