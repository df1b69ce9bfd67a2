-- Devices are now keyed per user: knowing somebody's installation id no
-- longer lets anyone take their device row. A push token still belongs to one
-- account at a time: registering it moves it (the device changed hands).
CREATE TABLE devices_by_user (
  user_id TEXT NOT NULL REFERENCES users (id),
  device_id TEXT NOT NULL,
  platform TEXT NOT NULL CHECK (platform IN ('ios', 'android', 'web')),
  push_token TEXT NOT NULL UNIQUE,
  app_version TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (user_id, device_id)
);
INSERT INTO devices_by_user (user_id, device_id, platform, push_token, app_version, created_at, updated_at)
  SELECT user_id, device_id, platform, push_token, app_version, created_at, updated_at FROM devices WHERE true
  ON CONFLICT DO NOTHING;  -- (WHERE true: SQLite needs it before ON CONFLICT)
DROP TABLE devices;
ALTER TABLE devices_by_user RENAME TO devices;
