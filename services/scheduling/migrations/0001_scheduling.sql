-- Scheduling: the local views built from master data, orders, machine states and shop-floor
-- events; pending re-plan triggers; every plan version with its assignments; inbox and outbox.

CREATE TABLE machines (
    machine_id   text PRIMARY KEY,
    work_center  text NOT NULL,
    capabilities text[] NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
    sku        text PRIMARY KEY,
    routing    jsonb NOT NULL,                  -- [{seq, name, capability, setup_s, run_s_per_unit}]
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per order; a cancellation may arrive before its placement (other topic), so either
-- half can come first and the row is complete when both have.
CREATE TABLE orders (
    order_id  text PRIMARY KEY,
    customer  text,
    due       bigint,                           -- epoch seconds, end of the due date UTC
    priority  text,
    lines     jsonb,                            -- [{line_no, sku, quantity}]
    placed    boolean NOT NULL DEFAULT false,
    cancelled boolean NOT NULL DEFAULT false,
    seq       bigserial
);
CREATE INDEX orders_open ON orders (seq) WHERE placed AND NOT cancelled;

CREATE TABLE machine_states (
    machine_id text PRIMARY KEY,
    state      text NOT NULL,
    since      bigint NOT NULL                  -- epoch seconds
);

CREATE TABLE progress (
    work_order_id text NOT NULL,
    seq           integer NOT NULL,
    machine_id    text NOT NULL,
    started       bigint,                       -- epoch seconds
    completed     bigint,
    PRIMARY KEY (work_order_id, seq)
);

CREATE TABLE triggers (
    id         bigserial PRIMARY KEY,
    kind       text NOT NULL,
    detail     text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE plans (
    plan_id       text NOT NULL,
    version       integer NOT NULL,
    planned_at    bigint NOT NULL,              -- the problem's "now", epoch seconds
    triggers      text[] NOT NULL,
    status        text NOT NULL,
    tardiness     bigint NOT NULL,
    makespan      bigint NOT NULL,
    moved         integer NOT NULL,
    planned       integer NOT NULL,
    changed       integer NOT NULL,
    late          integer NOT NULL,
    unplanned     jsonb NOT NULL,               -- [[work_order_id, seq]]
    horizon_end   bigint NOT NULL,
    solve_seconds double precision NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plan_id, version)
);

CREATE TABLE plan_assignments (
    plan_id       text NOT NULL,
    version       integer NOT NULL,
    work_order_id text NOT NULL,
    seq           integer NOT NULL,
    machine_id    text NOT NULL,
    start_s       bigint NOT NULL,
    end_s         bigint NOT NULL,
    late          boolean NOT NULL,
    PRIMARY KEY (plan_id, version, work_order_id, seq),
    FOREIGN KEY (plan_id, version) REFERENCES plans (plan_id, version)
);
CREATE INDEX plan_assignments_machine ON plan_assignments (plan_id, version, machine_id, start_s);
CREATE INDEX plan_assignments_operation ON plan_assignments (work_order_id, seq, version);

CREATE TABLE inbox (
    event_key   text PRIMARY KEY,               -- ce_source + ce_id: unique per CloudEvents
    topic       text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    topic      text NOT NULL,
    msg_key    text NOT NULL,
    ce_id      text NOT NULL UNIQUE,
    headers    jsonb NOT NULL,
    payload    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
