// Method + path-template routing. Templates are literal segments and typed
// parameters: "/api/v1/requests/{id}" (any segment), "{n:int}" (a 64-bit
// integer), "{id:id}" (a Souq id such as req_01h…). Literal segments win over
// parameters. A path that matches no template is 404; one whose template lacks
// the method is 405 with the methods it has.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "http/request.hpp"

namespace souq::api {

using Handler = std::function<awaitable<Response>(Request&)>;

struct RouteOptions {
  bool raw_body = false;  // the handler reads message.body() itself (webhooks, uploads): no JSON parsing
  size_t max_body = 0;    // a larger body than the server's --max-body (uploads); 0: the server's
};

struct Route {
  std::string pattern;  // as registered: "/items/{n:int}"
  std::string name;     // without parameter types, for logs, metrics and docs: "/items/{n}"
  http::verb method;
  Handler handler;
  RouteOptions options;
};

class Router {
 public:
  Router();
  ~Router();
  // Throws std::invalid_argument for a malformed template or a duplicate route.
  void add(http::verb method, const std::string& pattern, Handler handler, RouteOptions options = {});
  void get(const std::string& p, Handler h, RouteOptions o = {}) { add(http::verb::get, p, std::move(h), o); }
  void post(const std::string& p, Handler h, RouteOptions o = {}) { add(http::verb::post, p, std::move(h), o); }
  void put(const std::string& p, Handler h, RouteOptions o = {}) { add(http::verb::put, p, std::move(h), o); }
  void patch(const std::string& p, Handler h, RouteOptions o = {}) { add(http::verb::patch, p, std::move(h), o); }
  void del(const std::string& p, Handler h, RouteOptions o = {}) { add(http::verb::delete_, p, std::move(h), o); }

  // Fills req.matched, req.route, req.params, or req.allowed when only the method is wrong.
  void match(Request& req) const;
  std::vector<const Route*> routes() const;
  // The largest body any route accepts beyond `fallback`, and the limit of
  // the route a method and path reach (`fallback` for routes without one).
  size_t largest_body(size_t fallback) const;
  size_t body_limit(http::verb method, const std::string& path, size_t fallback) const;

 private:
  struct Node;
  using Params = std::vector<std::pair<std::string, std::string>>;
  // Depth-first: a literal segment before any parameter, then parameters in
  // the order they were added. Returns the first node that ends the path and
  // has any method, with the parameters it bound in `params`.
  static const Node* walk(const Node* node, const std::vector<std::string_view>& segments, size_t i, Params& params);
  std::unique_ptr<Node> root_;
  std::vector<std::unique_ptr<Route>> routes_;
};

}  // namespace souq::api
