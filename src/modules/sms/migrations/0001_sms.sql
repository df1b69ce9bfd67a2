-- Every text message souq sends, whichever provider carries it. The dev
-- provider only records (status 'recorded'); real providers move a message
-- from 'queued' to 'sent' (with the provider's id) or 'failed'.
CREATE TABLE sms_messages (
  id TEXT PRIMARY KEY,
  to_phone TEXT NOT NULL,
  body TEXT NOT NULL,
  purpose TEXT NOT NULL,
  provider TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued', 'recorded', 'sent', 'failed')),
  provider_message_id TEXT,
  error TEXT,
  request_id TEXT,
  created_at TEXT NOT NULL,
  sent_at TEXT
);
CREATE INDEX sms_messages_to ON sms_messages (to_phone, id);
