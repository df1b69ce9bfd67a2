// Everything `souq` can be told, from flags or SOUQ_* environment variables.
#pragma once
#include <string>
#include <vector>

namespace souq::app {

struct Config {
  std::string listen = "127.0.0.1:8080";
  std::string database = "sqlite:./var/souq.db";
  int threads = 0;  // 0: one per core
  int db_threads = 8;
  int workers = 2;
  bool dev = false;
  size_t max_body = 1 << 20;
  int header_timeout = 30;
  int body_timeout = 30;
  int shutdown_timeout = 10;
  double rate_limit = 20;
  double rate_burst = 60;
  bool trust_proxy = false;
  std::string cors_origins;
  std::string log_level = "info";
  // identity
  std::string jwt_secret;  // empty: made once and kept in the database
  std::string jwt_issuer = "souq";
  int access_token_ttl = 24 * 3600;
  int refresh_token_ttl = 30 * 24 * 3600;
  int otp_resend_cooldown = 60;
  int otp_per_ip_per_hour = 20;
  int otp_per_phone_per_hour = 5;  // from one address; 3x from all addresses
  int otp_failures_per_phone = 20;  // wrong codes per phone per day before 429
  int hash_queue = 32;  // password hashes waiting for a CPU thread before 503
  int otp_ttl = 600;
  int login_failures_per_email = 10;
  int session_cache_size = 100000;  // 0: check every request's session in the database
  int session_feed_ms = 200;        // how often other nodes' logouts are read
  std::string oidc_config;  // a JSON file of OpenID Connect providers
  // transactions and the marketplace
  std::string processes_dir;  // an operator's process definitions (*.json)
  std::string deal_process = "negotiation";  // for requests that name none
  int list_cache_ms = 1000;  // anonymous request-list pages kept this long (0: off)
  // files and chat
  std::string storage_dir = "./var/files";
  size_t chat_max_attachment = 5 * 1024 * 1024;
  // realtime
  std::string realtime_app_id = "souq";
  std::string realtime_key = "souq";
  std::string realtime_secret;  // empty: made once and kept in the database
  int realtime_activity_timeout = 120;
  int realtime_pong_timeout = 30;
  int realtime_max_connections = 100000;
  size_t realtime_max_message = 10 * 1024;
  std::string realtime_public_host;
  int realtime_public_port = 0;
  bool realtime_public_tls = false;
  std::string redis;  // redis://host:port: the bus between nodes
  // sms
  std::string sms_provider = "dev";
  std::string twilio_base_url = "https://api.twilio.com";
  std::string twilio_account_sid;
  std::string twilio_auth_token;
  std::string twilio_from;
  // notifications: push and email
  std::string push_provider = "dev";
  std::string fcm_credentials;
  std::string fcm_base_url = "https://fcm.googleapis.com";
  std::string fcm_token_url;
  std::string email_provider = "dev";
  std::string smtp_url;
  std::string smtp_user, smtp_password;
  std::string email_from = "Souq <no-reply@souq.localhost>";
  // payments
  std::string public_url;  // empty: http://<listen>
  std::vector<std::string> payment_providers;  // empty: wallet, plus the sandbox with --dev
  std::string sandbox_secret;  // empty: made once and kept in the database
  std::string merchant_id = "souq";
  std::string stripe_base_url = "https://api.stripe.com";
  std::string stripe_secret_key, stripe_webhook_secret;
  int webhook_tolerance = 300;
  // catalog
  bool product_moderation = false;  // new and edited products wait for an admin
  std::string media_base_url;       // image URLs start here (a CDN); default <public url>/media
  int product_cache_ttl = 300;      // seconds a rendered product page is served from memory (0: off)
};

}  // namespace souq::app
