// souq: the command line. Every option has a SOUQ_* environment variable.
#include <sodium.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "app/app.hpp"
#include "core/validation.hpp"

using souq::app::App;
using souq::app::Config;

namespace {

void add_common(CLI::App* cmd, Config& c) {
  cmd->add_option("--database", c.database, "Database URL: sqlite:PATH or postgres://USER@HOST:PORT/DB")
      ->envname("SOUQ_DATABASE")
      ->capture_default_str();
  cmd->add_option("--log-level", c.log_level, "debug, info, warn, error or off")
      ->envname("SOUQ_LOG_LEVEL")
      ->capture_default_str();
  cmd->add_option("--db-threads", c.db_threads, "Blocking-pool threads; also the PostgreSQL pool size")
      ->envname("SOUQ_DB_THREADS")
      ->check(CLI::Range(1, 512))
      ->capture_default_str();
  cmd->add_flag("--dev", c.dev, "Development conveniences (dev routes and job kinds); never in production")
      ->envname("SOUQ_DEV");
}

void add_sms(CLI::App* cmd, Config& c) {
  cmd->add_option("--sms-provider", c.sms_provider, "dev (records, sends nothing) or twilio")
      ->envname("SOUQ_SMS_PROVIDER")
      ->check(CLI::IsMember({"dev", "twilio"}))
      ->capture_default_str();
  cmd->add_option("--twilio-base-url", c.twilio_base_url, "Twilio API base URL")
      ->envname("SOUQ_TWILIO_BASE_URL")
      ->capture_default_str();
  cmd->add_option("--twilio-account-sid", c.twilio_account_sid, "Twilio account SID (AC…)")
      ->envname("SOUQ_TWILIO_ACCOUNT_SID");
  cmd->add_option("--twilio-auth-token", c.twilio_auth_token, "Twilio auth token")->envname("SOUQ_TWILIO_AUTH_TOKEN");
  cmd->add_option("--twilio-from", c.twilio_from, "Sender: an E.164 number or a Messaging Service SID (MG…)")
      ->envname("SOUQ_TWILIO_FROM");
}

void add_payments(CLI::App* cmd, Config& c) {
  cmd->add_option("--public-url", c.public_url,
                  "This server's public base URL (the sandbox's checkout page and webhooks); default http://<listen>")
      ->envname("SOUQ_PUBLIC_URL");
  cmd->add_option("--payment-providers", c.payment_providers,
                  "Payment providers: wallet, sandbox (a test gateway anyone can pay through), stripe "
                  "(default: wallet, and sandbox with --dev)")
      ->envname("SOUQ_PAYMENT_PROVIDERS")
      ->delimiter(',')
      ->check(CLI::IsMember({"wallet", "sandbox", "stripe"}));
  cmd->add_option("--sandbox-secret", c.sandbox_secret,
                  "Secret the sandbox gateway signs its webhooks with (default: made once, kept in the database)")
      ->envname("SOUQ_SANDBOX_SECRET");
  cmd->add_option("--merchant-id", c.merchant_id, "The recipient a gateway's payment must name")
      ->envname("SOUQ_MERCHANT_ID")
      ->capture_default_str();
  cmd->add_option("--stripe-base-url", c.stripe_base_url, "Stripe API base URL")
      ->envname("SOUQ_STRIPE_BASE_URL")
      ->capture_default_str();
  cmd->add_option("--stripe-secret-key", c.stripe_secret_key, "Stripe secret key (sk_…)")->envname("SOUQ_STRIPE_SECRET_KEY");
  cmd->add_option("--stripe-webhook-secret", c.stripe_webhook_secret, "Stripe webhook endpoint secret (whsec_…)")
      ->envname("SOUQ_STRIPE_WEBHOOK_SECRET");
  cmd->add_option("--webhook-tolerance", c.webhook_tolerance, "Seconds a webhook signature's timestamp may be off")
      ->envname("SOUQ_WEBHOOK_TOLERANCE")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
}

void add_catalog(CLI::App* cmd, Config& c) {
  cmd->add_flag("--product-moderation", c.product_moderation,
                "New products, and changes to a listed product's content, wait for an admin's approval")
      ->envname("SOUQ_PRODUCT_MODERATION");
  cmd->add_option("--media-base-url", c.media_base_url,
                  "Base URL of product image URLs, such as a CDN in front of /media (default: <public url>/media)")
      ->envname("SOUQ_MEDIA_BASE_URL");
  cmd->add_option("--product-cache-ttl", c.product_cache_ttl,
                  "Seconds a product page is served from memory (0: never); changes clear it on every node at once")
      ->envname("SOUQ_PRODUCT_CACHE_TTL")
      ->check(CLI::Range(0, 86400))
      ->capture_default_str();
}

void add_notifications(CLI::App* cmd, Config& c) {
  cmd->add_option("--push-provider", c.push_provider, "dev (records, sends nothing) or fcm (Firebase Cloud Messaging HTTP v1)")
      ->envname("SOUQ_PUSH_PROVIDER")
      ->check(CLI::IsMember({"dev", "fcm"}))
      ->capture_default_str();
  cmd->add_option("--fcm-credentials", c.fcm_credentials, "Google service-account JSON file for FCM")
      ->envname("SOUQ_FCM_CREDENTIALS")
      ->check(CLI::ExistingFile);
  cmd->add_option("--fcm-base-url", c.fcm_base_url, "FCM API base URL")->envname("SOUQ_FCM_BASE_URL")->capture_default_str();
  cmd->add_option("--fcm-token-url", c.fcm_token_url, "OAuth2 token endpoint (default: the credentials' token_uri)")
      ->envname("SOUQ_FCM_TOKEN_URL");
  cmd->add_option("--email-provider", c.email_provider, "dev (records, sends nothing) or smtp")
      ->envname("SOUQ_EMAIL_PROVIDER")
      ->check(CLI::IsMember({"dev", "smtp"}))
      ->capture_default_str();
  cmd->add_option("--smtp-url", c.smtp_url, "smtp://host:port (STARTTLS when offered) or smtps://host:port")
      ->envname("SOUQ_SMTP_URL");
  cmd->add_option("--smtp-user", c.smtp_user, "SMTP user name")->envname("SOUQ_SMTP_USER");
  cmd->add_option("--smtp-password", c.smtp_password, "SMTP password")->envname("SOUQ_SMTP_PASSWORD");
  cmd->add_option("--email-from", c.email_from, "Sender of notification emails: \"Name <address>\"")
      ->envname("SOUQ_EMAIL_FROM")
      ->capture_default_str();
}

void add_processes(CLI::App* cmd, Config& c) {
  cmd->add_option("--processes", c.processes_dir,
                  "Folder of process definitions (*.json) beside the built-in ones; a faulty one stops start-up")
      ->envname("SOUQ_PROCESSES")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--deal-process", c.deal_process, "The process deals follow when a request names none")
      ->envname("SOUQ_DEAL_PROCESS")
      ->capture_default_str();
}

void add_realtime(CLI::App* cmd, Config& c) {
  cmd->add_option("--redis", c.redis,
                  "Redis URL (redis://[:password@]host:port[/db]): the realtime bus between nodes; without it, one node")
      ->envname("SOUQ_REDIS");
  cmd->add_option("--realtime-app-id", c.realtime_app_id, "Pusher app id of the realtime server")
      ->envname("SOUQ_REALTIME_APP_ID")
      ->capture_default_str();
  cmd->add_option("--realtime-key", c.realtime_key, "Pusher app key clients connect with (public)")
      ->envname("SOUQ_REALTIME_KEY")
      ->capture_default_str();
  cmd->add_option("--realtime-secret", c.realtime_secret,
                  "Pusher app secret (signs channel auth and the HTTP API); empty: made once and kept in the database")
      ->envname("SOUQ_REALTIME_SECRET");
}

void add_storage(CLI::App* cmd, Config& c) {
  cmd->add_option("--storage-dir", c.storage_dir, "Folder for uploaded files (attachments)")
      ->envname("SOUQ_STORAGE_DIR")
      ->capture_default_str();
}

void add_workers(CLI::App* cmd, Config& c) {
  cmd->add_option("--workers", c.workers, "Job worker threads in this process (0: none)")
      ->envname("SOUQ_WORKERS")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) {
    std::cerr << "souq: libsodium could not initialise\n";
    return 1;
  }
  CLI::App cli{"Souq: a marketplace engine (HTTP/JSON API, realtime, workers) in one binary."};
  cli.require_subcommand(1);
  Config c;

  auto* serve = cli.add_subcommand("serve", "Run the HTTP server and job workers");
  add_common(serve, c);
  add_workers(serve, c);
  add_sms(serve, c);
  add_notifications(serve, c);
  add_payments(serve, c);
  add_catalog(serve, c);
  add_processes(serve, c);
  add_realtime(serve, c);
  add_storage(serve, c);
  serve->add_option("--chat-max-attachment", c.chat_max_attachment, "Largest chat attachment in bytes (413 beyond)")
      ->envname("SOUQ_CHAT_MAX_ATTACHMENT")
      ->check(CLI::Range(1024, 100 << 20))
      ->capture_default_str();
  serve->add_option("--realtime-activity-timeout", c.realtime_activity_timeout,
                    "Seconds of silence before the server pings a socket (told to clients)")
      ->envname("SOUQ_REALTIME_ACTIVITY_TIMEOUT")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  serve->add_option("--realtime-pong-timeout", c.realtime_pong_timeout,
                    "Seconds a pinged socket has to answer before it is closed (4201)")
      ->envname("SOUQ_REALTIME_PONG_TIMEOUT")
      ->check(CLI::Range(1, 600))
      ->capture_default_str();
  serve->add_option("--realtime-max-connections", c.realtime_max_connections,
                    "WebSocket connections this node holds before refusing more (4100: try later)")
      ->envname("SOUQ_REALTIME_MAX_CONNECTIONS")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  serve->add_option("--realtime-max-message", c.realtime_max_message,
                    "Largest frame a client may send, in bytes (closed 1009 beyond)")
      ->envname("SOUQ_REALTIME_MAX_MESSAGE")
      ->check(CLI::Range(256, 1 << 20))
      ->capture_default_str();
  serve->add_option("--realtime-public-host", c.realtime_public_host,
                    "Host clients connect to for realtime (default: the Host the request came to)")
      ->envname("SOUQ_REALTIME_PUBLIC_HOST");
  serve->add_option("--realtime-public-port", c.realtime_public_port, "Port clients connect to for realtime")
      ->envname("SOUQ_REALTIME_PUBLIC_PORT")
      ->check(CLI::Range(0, 65535));
  serve->add_flag("--realtime-public-tls", c.realtime_public_tls, "Clients connect with TLS (wss://), through a proxy")
      ->envname("SOUQ_REALTIME_PUBLIC_TLS");
  serve->add_option("--otp-resend-cooldown", c.otp_resend_cooldown, "Seconds before a phone may get another code")
      ->envname("SOUQ_OTP_RESEND_COOLDOWN")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  serve->add_option("--oidc-config", c.oidc_config,
                    "JSON file of OpenID Connect providers (issuer, audiences, JWKS) for /auth/oidc")
      ->envname("SOUQ_OIDC_CONFIG")
      ->check(CLI::ExistingFile);
  serve->add_option("--login-failures-per-email", c.login_failures_per_email,
                    "Failed password sign-ins per email in 15 minutes before 429 (per address: 5x this)")
      ->envname("SOUQ_LOGIN_FAILURES_PER_EMAIL")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  serve->add_option("--session-cache-size", c.session_cache_size,
                    "Live sessions kept in memory (0: read every request's session from the database)")
      ->envname("SOUQ_SESSION_CACHE_SIZE")
      ->check(CLI::Range(0, 10000000))
      ->capture_default_str();
  serve->add_option("--session-feed-ms", c.session_feed_ms,
                    "Milliseconds between reads of the sessions other nodes ended (how late a logout elsewhere can be)")
      ->envname("SOUQ_SESSION_FEED_MS")
      ->check(CLI::Range(10, 60000))
      ->capture_default_str();
  serve->add_option("--otp-ttl", c.otp_ttl, "Seconds a sign-in code stays valid")
      ->envname("SOUQ_OTP_TTL")
      ->check(CLI::Range(5, 3600))
      ->capture_default_str();
  serve->add_option("--otp-per-ip-per-hour", c.otp_per_ip_per_hour,
                    "Codes one client address may ask for in an hour (raise it behind carrier NAT)")
      ->envname("SOUQ_OTP_PER_IP_PER_HOUR")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  serve->add_option("--otp-per-phone-per-hour", c.otp_per_phone_per_hour,
                    "Codes a phone may get in an hour asked from one address (from all addresses: 3x this)")
      ->envname("SOUQ_OTP_PER_PHONE_PER_HOUR")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  serve->add_option("--otp-failures-per-phone", c.otp_failures_per_phone,
                    "Wrong codes a phone may see in 24 hours before code sign-in is closed for it (429)")
      ->envname("SOUQ_OTP_FAILURES_PER_PHONE")
      ->check(CLI::Range(3, 100000))
      ->capture_default_str();
  serve->add_option("--hash-queue", c.hash_queue,
                    "Password hashes that may wait for a CPU thread; beyond, sign-up and sign-in answer 503")
      ->envname("SOUQ_HASH_QUEUE")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  serve->add_option("--list-cache-ms", c.list_cache_ms,
                    "Milliseconds an anonymous page of the request list is served from memory (0: never); "
                    "this node's own writes clear it at once")
      ->envname("SOUQ_LIST_CACHE_MS")
      ->check(CLI::Range(0, 60000))
      ->capture_default_str();
  serve->add_option("--listen", c.listen, "Address to listen on, HOST:PORT (port 0: any free port)")
      ->envname("SOUQ_LISTEN")
      ->capture_default_str();
  serve->add_option("--threads", c.threads, "I/O threads (0: one per core)")
      ->envname("SOUQ_THREADS")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  serve->add_option("--max-body", c.max_body, "Largest request body in bytes (413 beyond)")
      ->envname("SOUQ_MAX_BODY")
      ->capture_default_str();
  serve->add_option("--header-timeout", c.header_timeout, "Seconds to wait for a request header, idle keep-alive included")
      ->envname("SOUQ_HEADER_TIMEOUT")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  serve->add_option("--body-timeout", c.body_timeout, "Seconds to receive a request body")
      ->envname("SOUQ_BODY_TIMEOUT")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  serve->add_option("--shutdown-timeout", c.shutdown_timeout, "Seconds in-flight requests get to finish on SIGTERM")
      ->envname("SOUQ_SHUTDOWN_TIMEOUT")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
  serve->add_option("--rate-limit", c.rate_limit, "Requests per second per client IP (0: no limit)")
      ->envname("SOUQ_RATE_LIMIT")
      ->check(CLI::Range(0.0, 1e9))
      ->capture_default_str();
  serve->add_option("--rate-burst", c.rate_burst, "Requests a client IP may make at once before the rate applies")
      ->envname("SOUQ_RATE_BURST")
      ->check(CLI::Range(1.0, 1e9))
      ->capture_default_str();
  serve->add_flag("--trust-proxy", c.trust_proxy, "Take the client IP from X-Forwarded-For (behind nginx only)")
      ->envname("SOUQ_TRUST_PROXY");
  serve->add_option("--jwt-secret", c.jwt_secret,
                    "HS256 secret for access tokens, 32+ characters (default: made once, kept in the database)")
      ->envname("SOUQ_JWT_SECRET");
  serve->add_option("--jwt-issuer", c.jwt_issuer, "The iss claim of access tokens")
      ->envname("SOUQ_JWT_ISSUER")
      ->capture_default_str();
  serve->add_option("--access-token-ttl", c.access_token_ttl, "Seconds an access token lives")
      ->envname("SOUQ_ACCESS_TOKEN_TTL")
      ->check(CLI::Range(1, 365 * 24 * 3600))
      ->capture_default_str();
  serve->add_option("--refresh-token-ttl", c.refresh_token_ttl, "Seconds a session (its refresh tokens) lives")
      ->envname("SOUQ_REFRESH_TOKEN_TTL")
      ->check(CLI::Range(60, 3650 * 24 * 3600))
      ->capture_default_str();
  serve->add_option("--cors-origins", c.cors_origins, "Origins allowed by CORS, comma separated, or *")
      ->envname("SOUQ_CORS_ORIGINS")
      ->capture_default_str();

  auto* worker = cli.add_subcommand("worker", "Run job workers only (no HTTP server)");
  add_common(worker, c);
  add_workers(worker, c);
  add_sms(worker, c);
  add_notifications(worker, c);
  add_payments(worker, c);
  add_catalog(worker, c);
  add_processes(worker, c);
  add_realtime(worker, c);
  add_storage(worker, c);

  auto* processes = cli.add_subcommand("processes", "Process definitions");
  processes->require_subcommand(1);
  auto* processes_check = processes->add_subcommand(
      "check", "Validate the built-in definitions and those in --processes; print what would load");
  add_processes(processes_check, c);

  auto* ledger = cli.add_subcommand("ledger", "The ledger");
  ledger->require_subcommand(1);
  auto* ledger_verify = ledger->add_subcommand(
      "verify", "Recompute every hash chain and balance from the transfers; print a JSON report (exit 1 on a fault)");
  add_common(ledger_verify, c);

  auto* search = cli.add_subcommand("search", "The search index");
  search->require_subcommand(1);
  auto* search_reindex = search->add_subcommand(
      "reindex", "Rebuild the search index from the catalogue and the seller profiles, in batches (the server may run)");
  add_common(search_reindex, c);
  add_processes(search_reindex, c);
  add_catalog(search_reindex, c);
  add_payments(search_reindex, c);
  add_storage(search_reindex, c);
  bool reindex_fresh = false;
  int reindex_batch = 200;
  search_reindex->add_flag("--fresh", reindex_fresh,
                           "Empty the index (and its vocabulary) first; searches find less until it is done");
  // Each document of a batch holds a lock until its transaction ends
  // (PostgreSQL's lock table has room for some thousands in all).
  search_reindex->add_option("--batch", reindex_batch, "Documents per transaction")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();

  auto* migrate = cli.add_subcommand("migrate", "Apply pending database migrations and exit");
  add_common(migrate, c);

  auto* jobs = cli.add_subcommand("jobs", "Inspect the job queue");
  jobs->require_subcommand(1);
  std::string status = "dead", job_id;
  int limit = 100;
  auto* list = jobs->add_subcommand("list", "List jobs as JSON lines");
  add_common(list, c);
  list->add_option("--status", status, "queued, running or dead")
      ->check(CLI::IsMember({"queued", "running", "dead"}))
      ->capture_default_str();
  list->add_option("--limit", limit, "At most this many")->capture_default_str();
  auto* retry = jobs->add_subcommand("retry", "Queue a dead job again");
  add_common(retry, c);
  retry->add_option("id", job_id, "The job id")->required();

  auto* admin = cli.add_subcommand("admin", "Manage admin accounts");
  admin->require_subcommand(1);
  auto* admin_create = admin->add_subcommand("create", "Create an admin (or make an existing account one)");
  add_common(admin_create, c);
  std::string admin_email, admin_password, admin_name = "Admin";
  admin_create->add_option("--email", admin_email, "The admin's email")->required();
  admin_create->add_option("--password", admin_password, "At least 8 characters (or SOUQ_ADMIN_PASSWORD)")
      ->envname("SOUQ_ADMIN_PASSWORD")
      ->required();
  admin_create->add_option("--display-name", admin_name, "Shown to users")->capture_default_str();
  std::string admin_phone;
  admin_create->add_option("--phone", admin_phone, "E.164 phone, so the admin can also sign in by OTP");
  bool promote_existing = false;
  admin_create->add_flag("--promote-existing", promote_existing,
                         "Make an existing account with this email an admin (ends its sessions and linked providers)");

  auto* seed = cli.add_subcommand("seed", "Fill the database with a demo marketplace (for trying Souq and for benchmarks)");
  add_common(seed, c);
  add_processes(seed, c);
  souq::marketplace::SeedOptions seed_options;
  seed->add_option("--requests", seed_options.requests, "Buy requests (0: none)")->check(CLI::Range(int64_t(0), int64_t(10'000'000)))->capture_default_str();
  seed->add_option("--offers", seed_options.offers, "Offers, spread over the requests")->check(CLI::Range(int64_t(0), int64_t(100'000'000)))->capture_default_str();
  seed->add_option("--buyers", seed_options.buyers, "Buyer accounts")->check(CLI::Range(1, 1'000'000))->capture_default_str();
  seed->add_option("--sellers", seed_options.sellers, "Approved seller accounts")->check(CLI::Range(1, 1'000'000))->capture_default_str();
  seed->add_option("--random-seed", seed_options.random_seed, "The same seed makes the same marketplace")->capture_default_str();
  souq::catalog::SeedOptions catalog_seed;
  catalog_seed.products = 0;
  seed->add_option("--products", catalog_seed.products, "Products (with SKUs) in a seeded category tree; then the search index is built")
      ->check(CLI::Range(int64_t(0), int64_t(100'000'000)))
      ->capture_default_str();
  seed->add_option("--skus-per-product", catalog_seed.skus_per_product, "SKUs of each seeded product")
      ->check(CLI::Range(1, 20))
      ->capture_default_str();
  seed->add_option("--shops", catalog_seed.sellers, "Approved sellers the seeded products belong to")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();

  cli.add_subcommand("version", "Print the version")->callback([] { std::cout << "souq " << SOUQ_VERSION << "\n"; });

  CLI11_PARSE(cli, argc, argv);
  if (cli.got_subcommand("version")) return 0;
  try {
    App app(c);
    if (cli.got_subcommand(serve)) return app.serve();
    if (cli.got_subcommand(worker)) return app.worker();
    if (cli.got_subcommand(migrate)) return app.migrate();
    if (list->parsed()) return app.jobs_list(status, limit);
    if (retry->parsed()) return app.jobs_retry(job_id);
    if (processes_check->parsed()) return app.processes_check();
    if (ledger_verify->parsed()) return app.ledger_verify();
    if (seed->parsed()) return app.seed(seed_options, catalog_seed);
    if (search_reindex->parsed()) return app.search_reindex(reindex_fresh, reindex_batch);
    if (admin_create->parsed()) {
      souq::json body = {{"email", admin_email}, {"password", admin_password}, {"display_name", admin_name}};
      if (!admin_phone.empty()) body["phone"] = admin_phone;
      souq::Validator v(body);
      auto email = v.email("email");
      auto password = v.password("password");
      auto name = v.text("display_name", 1, 80);
      auto phone = v.phone("phone", false);
      try {
        v.done();
      } catch (const souq::ApiError& e) {
        std::cerr << "souq: " << e.details().dump() << "\n";
        return 2;
      }
      return app.admin_create(*email, *password, *name, phone, promote_existing);
    }
  } catch (const std::exception& e) {
    std::cerr << "souq: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
