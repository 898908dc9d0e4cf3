-- Retention (services/orders/adapters/prune.py): sent outbox rows and inbox rows are deleted
-- oldest first, found through these indexes rather than by scanning the tables.

CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX inbox_topic_received_at ON inbox (topic, received_at);
