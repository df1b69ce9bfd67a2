-- What people are told: one row per person and event, rendered in their
-- locale when it was made. `in_app` rows show in the notification list;
-- others exist only to carry push and email deliveries (a chat line to
-- someone away). `dedupe_key` makes a redelivered event (the outbox is at
-- least once) or two events about one thing make one notification.
CREATE TABLE notifications (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  type TEXT NOT NULL,
  category TEXT NOT NULL,
  title TEXT NOT NULL,
  body TEXT NOT NULL,
  locale TEXT NOT NULL,
  dir TEXT NOT NULL CHECK (dir IN ('ltr', 'rtl')),
  data TEXT NOT NULL,
  in_app INTEGER NOT NULL,
  dedupe_key TEXT NOT NULL,
  read_at TEXT,
  created_at TEXT NOT NULL,
  UNIQUE (user_id, dedupe_key)
);
CREATE INDEX notifications_feed ON notifications (user_id, in_app, id);
CREATE INDEX notifications_unread ON notifications (user_id, id) WHERE in_app = 1 AND read_at IS NULL;

-- A person's choices that differ from the category's default.
CREATE TABLE notification_preferences (
  user_id TEXT NOT NULL,
  category TEXT NOT NULL,
  channel TEXT NOT NULL CHECK (channel IN ('in_app', 'push', 'email')),
  enabled INTEGER NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (user_id, category, channel)
);

-- An operator's wording, replacing the built-in template of a type and locale.
CREATE TABLE notification_templates (
  type TEXT NOT NULL,
  locale TEXT NOT NULL,
  title TEXT NOT NULL,
  body TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (type, locale)
);

-- Each push (per device) and email sent for a notification, and what the
-- provider said. The dev providers record here (status 'recorded') instead of
-- sending. A retried job skips what an earlier attempt already sent.
CREATE TABLE notification_deliveries (
  id TEXT PRIMARY KEY,
  notification_id TEXT NOT NULL REFERENCES notifications (id),
  user_id TEXT NOT NULL,
  channel TEXT NOT NULL CHECK (channel IN ('push', 'email')),
  provider TEXT NOT NULL,
  target TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued', 'recorded', 'sent', 'failed', 'invalid_token')),
  payload TEXT NOT NULL,
  provider_message_id TEXT,
  error TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  sent_at TEXT,
  UNIQUE (notification_id, channel, target)
);
CREATE INDEX notification_deliveries_user ON notification_deliveries (user_id, id);
