// Database failures, the same on both engines.
#pragma once
#include <stdexcept>
#include <string>

namespace souq::db {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The transaction may succeed if run again: SQLite busy/locked, PostgreSQL
// serialization failure or deadlock, or a connection lost before commit.
class RetryableError : public Error {
 public:
  using Error::Error;
};

// The connection to the server broke. Retryable before COMMIT was sent; after
// it, the outcome is unknown and the caller must not repeat the transaction.
class ConnectionLostError : public RetryableError {
 public:
  using RetryableError::RetryableError;
};

// A constraint refused the write. `kind` lets services map it to a 409/422.
class ConstraintError : public Error {
 public:
  enum class Kind { unique, foreign_key, check, not_null, other };
  ConstraintError(Kind kind, const std::string& message) : Error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

// No connection could be had in time (pool exhausted or server down).
class UnavailableError : public Error {
 public:
  using Error::Error;
};

}  // namespace souq::db
