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

 private:
  std::shared_ptr<const std::vector<std::string>> columns_;
  std::vector<Value> values_;
};

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

}  // namespace souq::db
