-- Every stored version of the service topology. Versions form one chain: each names the version
-- it replaced, and a parent can be replaced only once (UNIQUE), so two writers racing from the
-- same version cannot both win.
CREATE TABLE topology_versions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_id        BIGINT UNIQUE REFERENCES topology_versions (id),
    created_at_ms    BIGINT  NOT NULL,
    source           TEXT    NOT NULL,
    note             TEXT    NOT NULL DEFAULT '',
    digest           TEXT    NOT NULL,
    service_count    BIGINT  NOT NULL,
    dependency_count BIGINT  NOT NULL,
    document         TEXT    NOT NULL
);

-- Only one first version.
CREATE UNIQUE INDEX topology_versions_single_root ON topology_versions ((parent_id IS NULL))
    WHERE parent_id IS NULL;
