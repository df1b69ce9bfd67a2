// Live sessions remembered in memory, so that an authenticated request costs no
// database read, while logout and suspension still take effect on the next
// request.
//
// Every write that ends or alters a session (logout, password change,
// suspension, new roles) calls `record` in its transaction: a row goes into
// the `auth_changes` feed, and this node forgets the session when the
// transaction commits. Other nodes and processes read the feed every poll
// interval and forget too. An entry is only remembered if nothing was
// forgotten between the start of the database read that produced it and now
// (the generation check), so a read that raced a logout is never cached.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "db/database.hpp"

namespace souq::identity {

struct CachedSession {
  std::string user_id;
  std::vector<std::string> roles;
  int64_t expires_unix = 0;  // the session's own expiry
};

class SessionCache {
 public:
  // capacity 0 disables the cache: every lookup misses.
  explicit SessionCache(size_t capacity);
  ~SessionCache();
  SessionCache(const SessionCache&) = delete;
  SessionCache& operator=(const SessionCache&) = delete;

  bool enabled() const { return capacity_ > 0; }
  // The session's roles, if it is remembered, is the user's and has not expired.
  std::optional<std::vector<std::string>> find(const std::string& session_id, const std::string& user_id,
                                               int64_t now_unix) const;
  // Take before the read whose result you will remember.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  void remember(const std::string& session_id, CachedSession entry, uint64_t generation_at_read);
  // session_id empty: every session of the user.
  void forget(const std::string& user_id, const std::string& session_id);

  // In the writing transaction: the change goes into the feed, and this node
  // forgets at commit. session_id empty: every session of the user.
  void record(db::Tx& tx, const std::string& user_id, const std::string& session_id = {});

  // Reads the feed from now on every `interval` on a thread of its own, and
  // deletes rows older than an hour now and then.
  void follow(db::Database& db, std::chrono::milliseconds interval);
  // Stops reading the feed (joins the thread). Call before the database goes.
  void stop();
  // One read of the feed (what the thread does); returns how many changes it applied.
  int poll(db::Database& db);
  size_t size() const;

 private:
  void start_cursor(db::Database& db);

  size_t capacity_;
  std::string origin_;  // this process, so it skips its own changes in the feed
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, CachedSession> sessions_;
  std::atomic<uint64_t> generation_{0};

  // The feed's cursor: every seq <= low_ was applied or given up on; `seen_`
  // holds applied seqs above it. A missing seq is a transaction not yet
  // committed (PostgreSQL hands out sequence numbers before commit) or one that
  // rolled back: it is waited for `kGapPatience`, then skipped.
  int64_t low_ = 0;
  std::set<int64_t> seen_;
  std::optional<std::chrono::steady_clock::time_point> gap_since_;
  std::chrono::steady_clock::time_point last_cleanup_{};

  std::mutex thread_mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

// Access tokens whose signature and claims were already checked, so a token
// seen before costs one keyed hash instead of three base64 decodes, an HMAC
// and two JSON parses. Keyed by SipHash (per-process key) of the signature;
// see key_of for why that reveals nothing about tokens.
struct VerifiedToken {
  std::string user_id, session_id;
  int64_t expires_unix = 0;
};

class VerifiedTokens {
 public:
  explicit VerifiedTokens(size_t capacity);
  std::optional<VerifiedToken> find(std::string_view token, int64_t now_unix) const;
  void remember(std::string_view token, VerifiedToken verified);

 private:
  uint64_t key_of(std::string_view token) const;
  struct Entry {
    std::string token;
    VerifiedToken verified;
  };
  size_t capacity_;
  std::string hash_key_;
  mutable std::shared_mutex mu_;
  std::unordered_map<uint64_t, Entry> tokens_;
};

}  // namespace souq::identity
