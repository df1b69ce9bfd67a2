#include <string>

#include "http/middleware.hpp"

namespace souq::api {

Pipeline::Pipeline(std::vector<Middleware> layers, Next terminal) : layers_(std::move(layers)) {
  nexts_.resize(layers_.size() + 1);
  nexts_.back() = std::move(terminal);
  for (size_t i = layers_.size(); i-- > 0;)
    nexts_[i] = [this, i](Request& req) { return layers_[i](req, nexts_[i + 1]); };
}

Next dispatch() {
  return [](Request& req) -> awaitable<Response> {
    if (req.early_error) throw *req.early_error;
    if (!req.matched) {
      if (req.allowed.empty()) throw ApiError(404, "not_found", "No route matches " + req.path + ".");
      std::string allow;
      for (auto verb : req.allowed) {
        if (!allow.empty()) allow += ", ";
        allow += std::string(http::to_string(verb));
        if (verb == http::verb::get) allow += ", HEAD";
      }
      ApiError error(405, "method_not_allowed",
                     std::string(http::to_string(req.method())) + " is not allowed on " + req.route + ".",
                     {{"allow", allow}});
      throw error;
    }
    co_return co_await req.matched->handler(req);
  };
}

}  // namespace souq::api
