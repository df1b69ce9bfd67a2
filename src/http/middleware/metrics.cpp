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
    metrics.observe(std::string_view(req.message.method_string().data(), req.message.method_string().size()), req.route, res.result_int(), seconds);
    co_return res;
  };
}

}  // namespace souq::api
