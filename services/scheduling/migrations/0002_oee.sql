-- OEE: every machine-state change (not only the latest), completion quantities, and which
-- machine periods have been reported (a period is reported once).

CREATE TABLE state_log (
    machine_id text NOT NULL,
    since      bigint NOT NULL,                 -- epoch seconds
    state      text NOT NULL,
    PRIMARY KEY (machine_id, since, state)
);

ALTER TABLE progress ADD COLUMN good integer, ADD COLUMN scrap integer;
CREATE INDEX progress_completed ON progress (machine_id, completed) WHERE completed IS NOT NULL;

CREATE TABLE oee_reports (
    machine_id   text NOT NULL,
    period_start bigint NOT NULL,               -- epoch seconds
    period_end   bigint NOT NULL,
    oee          double precision,
    PRIMARY KEY (machine_id, period_start)
);
