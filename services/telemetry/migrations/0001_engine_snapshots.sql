-- Alarm and machine-state engine state per consumed partition (docs/decisions/0005).
-- next_offset: every reading below it is reflected in state; a replay skips them.
CREATE TABLE engine_snapshots (
    consumer_group text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    state jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);
