#include "modules/identity/session_cache.hpp"

#include <sodium.h>

#include "core/crypto.hpp"
#include "core/log.hpp"
#include "core/time.hpp"

namespace souq::identity {

namespace {
constexpr auto kGapPatience = std::chrono::seconds(30);
constexpr auto kKeep = std::chrono::hours(1);
constexpr auto kCleanupEvery = std::chrono::minutes(5);
// A process restarting mid-transaction may miss a change numbered just below
// the feed's end; re-reading the last few costs nothing (the cache is empty).
constexpr int64_t kStartBack = 64;
}  // namespace

SessionCache::SessionCache(size_t capacity) : capacity_(capacity), origin_(crypto::random_token(12)) {}

SessionCache::~SessionCache() { stop(); }

void SessionCache::stop() {
  {
    std::lock_guard lock(thread_mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::optional<std::vector<std::string>> SessionCache::find(const std::string& session_id, const std::string& user_id,
                                                          int64_t now_unix) const {
  if (!enabled()) return std::nullopt;
  std::shared_lock lock(mu_);
  auto it = sessions_.find(session_id);
  if (it == sessions_.end() || it->second.user_id != user_id || it->second.expires_unix <= now_unix)
    return std::nullopt;
  return it->second.roles;
}

void SessionCache::remember(const std::string& session_id, CachedSession entry, uint64_t generation_at_read) {
  if (!enabled()) return;
  std::unique_lock lock(mu_);
  // Something was forgotten since the read began: the read may predate it.
  if (generation_.load(std::memory_order_acquire) != generation_at_read) return;
  if (sessions_.size() >= capacity_) sessions_.clear();  // rare, and a miss only costs one read
  sessions_.insert_or_assign(session_id, std::move(entry));
}

void SessionCache::forget(const std::string& user_id, const std::string& session_id) {
  if (!enabled()) return;
  std::unique_lock lock(mu_);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  if (!session_id.empty()) {
    sessions_.erase(session_id);
    return;
  }
  std::erase_if(sessions_, [&](const auto& kv) { return kv.second.user_id == user_id; });
}

void SessionCache::record(db::Tx& tx, const std::string& user_id, const std::string& session_id) {
  tx.exec("INSERT INTO auth_changes (user_id, session_id, origin, created_at) VALUES ($1, $2, $3, $4)",
          {user_id, session_id.empty() ? std::optional<std::string>() : std::optional(session_id), origin_,
           now_text()});
  tx.after_commit([this, user_id, session_id] { forget(user_id, session_id); });
}

size_t SessionCache::size() const {
  std::shared_lock lock(mu_);
  return sessions_.size();
}

void SessionCache::start_cursor(db::Database& db) {
  low_ = db.read([](db::Tx& tx) { return tx.query_one("SELECT COALESCE(MAX(seq), 0) AS n FROM auth_changes")->integer("n"); });
  low_ = std::max<int64_t>(0, low_ - kStartBack);
}

int SessionCache::poll(db::Database& db) {
  struct Change {
    int64_t seq;
    std::string user_id, session_id, origin;
  };
  auto changes = db.read([&](db::Tx& tx) {
    std::vector<Change> out;
    for (auto& row : tx.query("SELECT seq, user_id, session_id, origin FROM auth_changes WHERE seq > $1"
                              " ORDER BY seq LIMIT 1000",
                              {low_}))
      out.push_back({row.integer("seq"), row.text("user_id"), row.opt_text("session_id").value_or(""),
                     row.text("origin")});
    return out;
  });
  int applied = 0;
  for (const auto& change : changes) {
    if (!seen_.insert(change.seq).second) continue;
    if (change.origin != origin_) {
      forget(change.user_id, change.session_id);
      ++applied;
    }
  }
  // Advance over what is contiguous; wait a while for a missing number.
  auto now = std::chrono::steady_clock::now();
  while (!seen_.empty()) {
    if (*seen_.begin() == low_ + 1) {
      seen_.erase(seen_.begin());
      ++low_;
      gap_since_.reset();
      continue;
    }
    if (!gap_since_) gap_since_ = now;
    if (now - *gap_since_ < kGapPatience) break;
    ++low_;  // given up on: rolled back, or never committed
    gap_since_.reset();
  }
  return applied;
}

void SessionCache::follow(db::Database& db, std::chrono::milliseconds interval) {
  if (!enabled()) return;
  start_cursor(db);
  thread_ = std::thread([this, &db, interval] {
    std::unique_lock lock(thread_mu_);
    while (!wake_.wait_for(lock, interval, [this] { return stopping_; })) {
      lock.unlock();
      try {
        poll(db);
        auto now = std::chrono::steady_clock::now();
        if (now - last_cleanup_ >= kCleanupEvery) {
          last_cleanup_ = now;
          db.write([&](db::Tx& tx) {
            tx.exec("DELETE FROM auth_changes WHERE created_at < $1",
                    {format_time(souq::now() - std::chrono::duration_cast<std::chrono::milliseconds>(kKeep))});
          });
        }
      } catch (const std::exception& e) {
        // The database is away: sessions cached now may outlive a change made
        // elsewhere, so forget them all and read again once it is back.
        log::warn("session feed unavailable; the session cache starts over", {{"error", e.what()}});
        std::unique_lock cache_lock(mu_);
        generation_.fetch_add(1, std::memory_order_acq_rel);
        sessions_.clear();
      }
      lock.lock();
    }
  });
}

VerifiedTokens::VerifiedTokens(size_t capacity)
    : capacity_(capacity), hash_key_(crypto_shorthash_KEYBYTES, '\0') {
  randombytes_buf(hash_key_.data(), hash_key_.size());
}

// Keyed by the signature alone (the token's last 43 characters): hashing the
// whole token and comparing it in constant time cost more than the rest of the
// check. The key is secret, so no request can aim at an entry's bucket; the
// full token is then compared, and reaching that comparison already needs a
// valid signature, so its timing reveals nothing.
uint64_t VerifiedTokens::key_of(std::string_view token) const {
  auto dot = token.rfind('.');
  std::string_view signature = dot == std::string_view::npos ? token : token.substr(dot + 1);
  uint64_t out;
  crypto_shorthash(reinterpret_cast<unsigned char*>(&out), reinterpret_cast<const unsigned char*>(signature.data()),
                   signature.size(), reinterpret_cast<const unsigned char*>(hash_key_.data()));
  return out;
}

std::optional<VerifiedToken> VerifiedTokens::find(std::string_view token, int64_t now_unix) const {
  if (capacity_ == 0) return std::nullopt;
  uint64_t key = key_of(token);
  std::shared_lock lock(mu_);
  auto it = tokens_.find(key);
  if (it == tokens_.end() || it->second.token != token || it->second.verified.expires_unix <= now_unix)
    return std::nullopt;
  return it->second.verified;
}

void VerifiedTokens::remember(std::string_view token, VerifiedToken verified) {
  if (capacity_ == 0) return;
  uint64_t key = key_of(token);
  std::unique_lock lock(mu_);
  if (tokens_.size() >= capacity_) tokens_.clear();
  tokens_.insert_or_assign(key, Entry{std::string(token), std::move(verified)});
}

}  // namespace souq::identity
