#include <algorithm>
#include "http/router.hpp"

#include <charconv>
#include <regex>
#include <stdexcept>

#include "core/id.hpp"

namespace souq::api {

enum class ParamType { any, integer, id };

struct Router::Node {
  std::map<std::string, std::unique_ptr<Node>, std::less<>> literals;
  struct Param {
    std::string name;
    ParamType type;
    std::unique_ptr<Node> node;
  };
  std::vector<Param> params;
  std::map<http::verb, const Route*> methods;
};

namespace {

std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 1;
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

bool fits(ParamType type, const std::string& value) {
  switch (type) {
    case ParamType::integer: {
      int64_t n;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      return ec == std::errc() && p == value.data() + value.size();
    }
    case ParamType::id: return is_id(value);
    default: return !value.empty();
  }
}

}  // namespace

Router::Router() : root_(std::make_unique<Node>()) {}
Router::~Router() = default;

void Router::add(http::verb method, const std::string& pattern, Handler handler, RouteOptions options) {
  if (pattern.empty() || pattern[0] != '/') throw std::invalid_argument("route must start with '/': " + pattern);
  Node* node = root_.get();
  for (auto segment : split(pattern)) {
    if (segment.size() >= 2 && segment.front() == '{' && segment.back() == '}') {
      auto inner = segment.substr(1, segment.size() - 2);
      auto colon = inner.find(':');
      std::string name(inner.substr(0, colon));
      std::string type_name(colon == std::string_view::npos ? "" : inner.substr(colon + 1));
      ParamType type = type_name.empty() ? ParamType::any
                       : type_name == "int" ? ParamType::integer
                       : type_name == "id"  ? ParamType::id
                                            : throw std::invalid_argument("unknown parameter type in " + pattern);
      if (name.empty()) throw std::invalid_argument("unnamed parameter in " + pattern);
      Node* next = nullptr;
      for (auto& p : node->params)
        if (p.name == name && p.type == type) next = p.node.get();
      if (!next) {
        node->params.push_back({name, type, std::make_unique<Node>()});
        next = node->params.back().node.get();
      }
      node = next;
    } else {
      auto& child = node->literals[std::string(segment)];
      if (!child) child = std::make_unique<Node>();
      node = child.get();
    }
  }
  if (node->methods.count(method))
    throw std::invalid_argument("duplicate route " + std::string(http::to_string(method)) + " " + pattern);
  static const std::regex typed(R"(\{([^}:]+):[^}]+\})");
  routes_.push_back(std::make_unique<Route>(
      Route{pattern, std::regex_replace(pattern, typed, "{$1}"), method, std::move(handler), options}));
  node->methods[method] = routes_.back().get();
}

const Router::Node* Router::walk(const Node* node, const std::vector<std::string_view>& segments, size_t i,
                                 Params& params) {
  if (i == segments.size()) return node->methods.empty() ? nullptr : node;
  if (auto it = node->literals.find(segments[i]); it != node->literals.end())
    if (auto* found = walk(it->second.get(), segments, i + 1, params)) return found;
  if (node->params.empty()) return nullptr;
  auto decoded = percent_decode(segments[i], false);
  if (!decoded) return nullptr;
  for (const auto& p : node->params) {
    if (!fits(p.type, *decoded)) continue;
    params.emplace_back(p.name, *decoded);
    if (auto* found = walk(p.node.get(), segments, i + 1, params)) return found;
    params.pop_back();
  }
  return nullptr;
}

void Router::match(Request& req) const {
  if (req.path.empty() || req.path[0] != '/') return;
  auto segments = split(req.path);
  Params params;
  const Node* node = walk(root_.get(), segments, 0, params);
  if (!node) return;
  auto method = req.method() == http::verb::head ? http::verb::get : req.method();
  auto it = node->methods.find(method);
  const Route* any = node->methods.begin()->second;
  req.route = any->name;
  if (it == node->methods.end()) {
    for (auto& [verb, _] : node->methods) req.allowed.push_back(verb);
    return;
  }
  req.matched = it->second;
  req.params = std::move(params);
}

size_t Router::largest_body(size_t fallback) const {
  for (auto& r : routes_) fallback = std::max(fallback, r->options.max_body);
  return fallback;
}

size_t Router::body_limit(http::verb method, const std::string& path, size_t fallback) const {
  Request probe;
  probe.message.method(method);
  probe.path = path;
  match(probe);
  return probe.matched && probe.matched->options.max_body ? probe.matched->options.max_body : fallback;
}

std::vector<const Route*> Router::routes() const {
  std::vector<const Route*> out;
  for (auto& r : routes_) out.push_back(r.get());
  return out;
}

}  // namespace souq::api
