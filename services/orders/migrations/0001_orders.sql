-- Orders: state, timeline, inbox (consumed event ids), outbox (events to publish), and the
-- local product view built from masterdata.products.v1.

CREATE TABLE orders (
    order_id        text PRIMARY KEY,
    seq             bigserial UNIQUE,            -- stable paging order
    principal       text NOT NULL,               -- who placed it: scope of the idempotency key
    idempotency_key text NOT NULL,
    request_hash    text NOT NULL,
    customer        text NOT NULL,
    status          text NOT NULL,
    due_date        date NOT NULL,
    priority        text NOT NULL,
    currency        text NOT NULL,
    total_minor     bigint NOT NULL,
    lines           jsonb NOT NULL,
    facts           jsonb NOT NULL,
    event_seq       integer NOT NULL DEFAULT 0,  -- events emitted so far: derives ce_id
    placed_at       timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (principal, idempotency_key)
);
CREATE INDEX orders_customer_seq ON orders (customer, seq);
CREATE INDEX orders_status_seq ON orders (status, seq);

CREATE TABLE order_timeline (
    order_id text NOT NULL REFERENCES orders (order_id),
    n        bigserial,
    at       timestamptz NOT NULL,
    kind     text NOT NULL,
    status   text NOT NULL,
    detail   jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (order_id, n)
);

CREATE TABLE inbox (
    event_key   text PRIMARY KEY,                -- ce_source + ce_id: unique per CloudEvents
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

CREATE TABLE products (
    sku        text PRIMARY KEY,
    data       jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
