-- The local customer view built from masterdata.customers.v1: an order names a customer
-- that this view knows, or it is refused.

CREATE TABLE customers (
    customer_id text PRIMARY KEY,
    data        jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
