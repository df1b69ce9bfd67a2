// Query results, read by column name or position with typed getters.
#pragma once
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "db/value.hpp"

namespace souq::db {

class Row {
 public:
  Row(std::shared_ptr<const std::vector<std::string>> columns, std::vector<Value> values)
      : columns_(std::move(columns)), values_(std::move(values)) {}

  const Value& at(size_t index) const;
  const Value& at(std::string_view column) const;
  size_t size() const { return values_.size(); }
  bool is_null(std::string_view column) const { return at(column).is_null(); }

  int64_t integer(std::string_view column) const { return at(column).as_int(); }
  double real(std::string_view column) const { return at(column).as_double(); }
  bool boolean(std::string_view column) const { return at(column).as_bool(); }
  std::string text(std::string_view column) const { return at(column).as_string(); }
  nlohmann::json json(std::string_view column) const;
  std::optional<std::string> opt_text(std::string_view column) const;
  std::optional<int64_t> opt_integer(std::string_view column) const;
  // The text as a JSON string, or JSON null for SQL NULL (for API documents).
  nlohmann::json nullable_text(std::string_view column) const;

 private:
  std::shared_ptr<const std::vector<std::string>> columns_;
  std::vector<Value> values_;
};

// One page of a list ordered by id: `rows` were fetched with LIMIT limit + 1,
// so an extra row means there is more. Returns the items and the cursor for
// the next page (the last item's id) or null.
template <class F>
std::pair<nlohmann::json, nlohmann::json> page_of(const class Rows& rows, int limit, F to_json);

class Rows {
 public:
  Rows() = default;
  Rows(std::shared_ptr<const std::vector<std::string>> columns) : columns_(std::move(columns)) {}
  void push(std::vector<Value> values) { rows_.emplace_back(columns_, std::move(values)); }

  size_t size() const { return rows_.size(); }
  bool empty() const { return rows_.empty(); }
  const Row& operator[](size_t i) const { return rows_.at(i); }
  auto begin() const { return rows_.begin(); }
  auto end() const { return rows_.end(); }
  std::optional<Row> first() const { return rows_.empty() ? std::nullopt : std::optional<Row>(rows_.front()); }
  const std::vector<std::string>& columns() const;

 private:
  std::shared_ptr<const std::vector<std::string>> columns_;
  std::vector<Row> rows_;
};

template <class F>
std::pair<nlohmann::json, nlohmann::json> page_of(const Rows& rows, int limit, F to_json) {
  nlohmann::json items = nlohmann::json::array();
  for (size_t i = 0; i < rows.size() && int(i) < limit; ++i) items.push_back(to_json(rows[i]));
  nlohmann::json next = int(rows.size()) > limit ? items.back()["id"] : nlohmann::json(nullptr);
  return {std::move(items), std::move(next)};
}

}  // namespace souq::db
