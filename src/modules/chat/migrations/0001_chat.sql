-- Conversations between the parties of a subject (an offer, a transaction,
-- a request enquiry…): one per subject and set of participants.
CREATE TABLE conversations (
  id TEXT PRIMARY KEY,
  subject_type TEXT NOT NULL,
  subject_id TEXT NOT NULL,
  participants_key TEXT NOT NULL,  -- the participants' ids, sorted, joined by ','
  created_by TEXT,
  created_at TEXT NOT NULL,
  last_message_id TEXT,
  last_message_at TEXT,
  message_count BIGINT NOT NULL DEFAULT 0,
  UNIQUE (subject_type, subject_id, participants_key)
);

-- Each participant's read marker and exact unread count, kept in the same
-- database transaction as the messages and reads that change them.
CREATE TABLE conversation_participants (
  conversation_id TEXT NOT NULL REFERENCES conversations (id),
  user_id TEXT NOT NULL,
  role TEXT NOT NULL,
  last_read_message_id TEXT,
  last_read_at TEXT,
  unread_count BIGINT NOT NULL DEFAULT 0,
  joined_at TEXT NOT NULL,
  last_activity_at TEXT NOT NULL,  -- the conversation's last message, for listing a user's inbox
  PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_participants_inbox ON conversation_participants (user_id, last_activity_at, conversation_id);

CREATE TABLE messages (
  id TEXT PRIMARY KEY,
  conversation_id TEXT NOT NULL REFERENCES conversations (id),
  sender_id TEXT,             -- null: a system message posted by a process
  kind TEXT NOT NULL,         -- text | system
  body TEXT,
  attachments TEXT NOT NULL,  -- JSON array of attachment ids
  client_id TEXT,             -- the sender's idempotency key
  created_at TEXT NOT NULL
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
CREATE UNIQUE INDEX messages_client_id ON messages (conversation_id, sender_id, client_id);

CREATE TABLE chat_attachments (
  id TEXT PRIMARY KEY,
  conversation_id TEXT NOT NULL REFERENCES conversations (id),
  owner_id TEXT NOT NULL,
  message_id TEXT,  -- set when a message carries it
  filename TEXT NOT NULL,
  content_type TEXT NOT NULL,
  size BIGINT NOT NULL,
  storage_key TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX chat_attachments_message ON chat_attachments (message_id);
