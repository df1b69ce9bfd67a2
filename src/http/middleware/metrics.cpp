#include "http/middleware.hpp"

namespace souq::api {

Middleware middleware::metrics(Metrics& metrics) {
  return [&metrics](Request& req, const Next& next) -> awaitable<Response> {
    metrics.add_in_flight(1);
    struct Done {
      Metrics& m;
      ~Done() { m.add_in_flight(-1); }
    } done{metrics};
    Response res = co_await next(req);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - req.started).count();
    // The verb's canonical name, never the client's token: an unknown method
    // must not add a series per spelling.
    auto method = req.method() == http::verb::unknown ? std::string_view("OTHER")
                                                       : std::string_view(http::to_string(req.method()).data(),
                                                                          http::to_string(req.method()).size());
    metrics.observe(method, req.route, res.result_int(), seconds);
    co_return res;
  };
}

}  // namespace souq::api
