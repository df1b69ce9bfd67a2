// A GET list that anonymous callers all see alike, served from a PageCache
// when it holds the page and kept there when it is made. Signed-in callers
// always read through.
#pragma once
#include <memory>
#include <string>

#include "core/asio.hpp"
#include "core/json.hpp"
#include "http/page_cache.hpp"
#include "http/request.hpp"
#include "http/response.hpp"

namespace souq::api {

// `read()` is a coroutine giving {items, next_cursor}: the items as JSON,
// or already rendered (a string holding the JSON array, made off the I/O
// thread).
template <class Read>
awaitable<Response> cached_list(Request& req, PageCache& cache, Read read) {
  bool anonymous = req.header(http::field::authorization).empty();
  std::string key = req.path + "?" + req.query;
  if (anonymous)
    if (auto page = cache.find(key))
      co_return ok_rendered(req, page->data, page->next_cursor.empty() ? json(nullptr) : json(page->next_cursor));
  uint64_t generation = cache.generation();
  auto [items, next] = co_await read();
  constexpr bool rendered = std::is_same_v<std::decay_t<decltype(items)>, std::string>;
  if (anonymous && cache.enabled()) {
    std::string data;
    if constexpr (rendered) data = std::move(items);
    else data = dump_json(items);
    auto page = std::make_shared<const PageCache::Page>(
        PageCache::Page{std::move(data), next.is_string() ? next.template get<std::string>() : ""});
    cache.store(key, page, generation);
    co_return ok_rendered(req, page->data, next);
  }
  if constexpr (rendered) co_return ok_rendered(req, items, next);
  else co_return ok(req, std::move(items), http::status::ok, {{"next_cursor", next}});
}

}  // namespace souq::api
