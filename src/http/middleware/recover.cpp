#include "core/log.hpp"
#include "db/errors.hpp"
#include "http/middleware.hpp"
#include "http/response.hpp"

namespace souq::api {

Middleware middleware::recover() {
  return [](Request& req, const Next& next) -> awaitable<Response> {
    // The error is built inside the catch blocks and answered outside them:
    // a co_await is not allowed in a handler.
    std::optional<ApiError> error;
    try {
      co_return co_await next(req);
    } catch (const ApiError& e) {
      error = e;
    } catch (const db::UnavailableError& e) {
      log::error("database unavailable", {{"request_id", req.request_id}, {"error", e.what()}});
      error = ApiError(503, "service_unavailable", "The service is temporarily unavailable. Try again shortly.");
    } catch (const std::exception& e) {
      log::error("unhandled exception", {{"request_id", req.request_id}, {"route", req.route}, {"error", e.what()}});
      error = ApiError(500, "internal_error", "Something went wrong on our side. Quote the request id if you report it.");
    } catch (...) {
      log::error("unhandled exception", {{"request_id", req.request_id}, {"route", req.route}});
      error = ApiError(500, "internal_error", "Something went wrong on our side. Quote the request id if you report it.");
    }
    Response res = error_response(req, *error);
    if (error->status() == 405 && error->details().contains("allow"))
      res.set(http::field::allow, error->details()["allow"].get<std::string>());
    if ((error->status() == 429 || error->status() == 503) && error->details().contains("retry_after"))
      res.set(http::field::retry_after, std::to_string(error->details()["retry_after"].get<int>()));
    if (error->status() == 413 || error->status() == 431 || (error->status() == 400 && req.early_error))
      res.keep_alive(false);
    co_return res;
  };
}

}  // namespace souq::api
