#include <gtest/gtest.h>

#include "http/middleware.hpp"
#include "http/rate_limiter.hpp"
#include "http/response.hpp"
#include "http/router.hpp"

using namespace souq;
using namespace souq::api;

namespace {

template <class T>
T run_sync(awaitable<T> a) {
  asio::io_context ioc;
  auto future = asio::co_spawn(ioc, std::move(a), asio::use_future);
  ioc.run();
  return future.get();
}

Handler named(std::string name) {
  return [name](Request& req) -> awaitable<Response> { co_return ok(req, {{"handler", name}}); };
}

Request make(http::verb method, std::string target, std::string body = {}, std::string content_type = {}) {
  Request req;
  req.message = Message{method, target, 11};
  if (!content_type.empty()) req.message.set(http::field::content_type, content_type);
  req.message.body() = std::move(body);
  auto q = target.find('?');
  req.path = target.substr(0, q);
  if (q != std::string::npos) req.query = target.substr(q + 1);
  req.client_ip = "10.0.0.1";
  return req;
}

std::string handler_of(const Router& router, http::verb method, const std::string& path) {
  auto req = make(method, path);
  router.match(req);
  if (!req.matched) return req.allowed.empty() ? "404" : "405";
  auto res = run_sync(req.matched->handler(req));
  return json::parse(res.body())["data"]["handler"];
}

}  // namespace

TEST(Router, MatchesLiteralsBeforeParametersAndChecksTypes) {
  Router r;
  r.get("/api/v1/requests/{id}", named("by-id"));
  r.get("/api/v1/requests/mine", named("mine"));
  r.get("/api/v1/items/{n:int}", named("int"));
  r.get("/api/v1/things/{id:id}", named("souq-id"));
  r.post("/api/v1/requests", named("create"));
  EXPECT_EQ(handler_of(r, http::verb::get, "/api/v1/requests/mine"), "mine");
  EXPECT_EQ(handler_of(r, http::verb::get, "/api/v1/requests/req_1"), "by-id");
  EXPECT_EQ(handler_of(r, http::verb::get, "/api/v1/items/42"), "int");
  EXPECT_EQ(handler_of(r, http::verb::get, "/api/v1/items/4x2"), "404");
  EXPECT_EQ(handler_of(r, http::verb::get, "/api/v1/things/req_0123456789abcdefghjkmnpqrs"), "souq-id");
  EXPECT_EQ(handler_of(r, http::verb::get, "/api/v1/things/nope"), "404");
  EXPECT_EQ(handler_of(r, http::verb::get, "/api/v1/requests/"), "404");
  EXPECT_EQ(handler_of(r, http::verb::get, "/api/v1/requests/a/b"), "404");
  EXPECT_EQ(handler_of(r, http::verb::delete_, "/api/v1/requests"), "405");
  EXPECT_EQ(handler_of(r, http::verb::head, "/api/v1/requests/mine"), "mine");
}

TEST(Router, DecodesParametersAndReportsTheTemplate) {
  Router r;
  r.get("/files/{name}", named("file"));
  auto req = make(http::verb::get, "/files/a%20b%2Fc");
  r.match(req);
  ASSERT_TRUE(req.matched);
  EXPECT_EQ(req.param("name"), "a b/c");
  EXPECT_EQ(req.route, "/files/{name}");
  Router typed;
  typed.get("/items/{n:int}", named("i"));
  auto item = make(http::verb::get, "/items/7");
  typed.match(item);
  EXPECT_EQ(item.route, "/items/{n}") << "templates are reported without parameter types";
  auto bad = make(http::verb::get, "/files/%zz");
  r.match(bad);
  EXPECT_FALSE(bad.matched);
}

TEST(Router, RefusesDuplicatesAndMalformedTemplates) {
  Router r;
  r.get("/a/{id}", named("x"));
  EXPECT_THROW(r.get("/a/{id}", named("y")), std::invalid_argument);
  EXPECT_THROW(r.get("a", named("y")), std::invalid_argument);
  EXPECT_THROW(r.get("/a/{id:float}", named("y")), std::invalid_argument);
}

TEST(Request, QueryParametersAreDecoded) {
  auto req = make(http::verb::get, "/x?q=red+shoes&city=%D8%A7&flag&empty=");
  EXPECT_EQ(req.query_param("q"), "red shoes");
  EXPECT_EQ(req.query_param("city"), "\xD8\xA7");
  EXPECT_EQ(req.query_param("flag"), "");
  EXPECT_EQ(req.query_param("empty"), "");
  EXPECT_FALSE(req.query_param("missing"));
}

TEST(RateLimiter, RefillsAtTheRateUpToTheBurst) {
  RateLimiter limiter(2, 3);  // 2 per second, 3 at once
  auto t0 = RateLimiter::Clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.take("ip", t0).allowed);
  auto refused = limiter.take("ip", t0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_NEAR(refused.retry_after, 0.5, 0.01);
  EXPECT_TRUE(limiter.take("other-ip", t0).allowed) << "buckets are per key";
  EXPECT_TRUE(limiter.take("ip", t0 + std::chrono::milliseconds(500)).allowed);
  EXPECT_FALSE(limiter.take("ip", t0 + std::chrono::milliseconds(600)).allowed);
  auto later = t0 + std::chrono::seconds(60);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.take("ip", later).allowed) << "never more than the burst";
  EXPECT_FALSE(limiter.take("ip", later).allowed);
}

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router.get("/ok", named("ok"));
    router.post("/echo", [](Request& req) -> awaitable<Response> { co_return ok(req, req.body); });
    router.get("/throws", [](Request&) -> awaitable<Response> {
      throw std::runtime_error("secret internals");
      co_return Response{};
    });
    router.get("/conflict", [](Request&) -> awaitable<Response> {
      throw ApiError::conflict("offer_taken", "Someone was faster.");
      co_return Response{};
    });
  }
  Response run(Request req, std::vector<Middleware> extra = {}) {
    router.match(req);
    std::vector<Middleware> layers = {middleware::request_id(), middleware::metrics(metrics),
                                      middleware::security_headers(), middleware::cors({{"https://app.example"}}),
                                      middleware::recover()};
    for (auto& m : extra) layers.push_back(std::move(m));
    layers.push_back(middleware::json_body());
    Pipeline pipeline(std::move(layers), dispatch());
    return run_sync(pipeline(req));
  }
  static json body(const Response& res) { return json::parse(res.body()); }
  Router router;
  Metrics metrics;
};

TEST_F(PipelineTest, ErrorsBecomeEnvelopesWithTheRequestId) {
  auto res = run(make(http::verb::get, "/throws"));
  EXPECT_EQ(res.result_int(), 500);
  auto b = body(res);
  EXPECT_EQ(b["error"]["code"], "internal_error");
  EXPECT_EQ(b["error"]["message"].get<std::string>().find("secret"), std::string::npos) << "no internals leak";
  EXPECT_EQ(b["meta"]["request_id"], std::string(res["X-Request-Id"]));
  EXPECT_EQ(body(run(make(http::verb::get, "/conflict")))["error"]["code"], "offer_taken");
  EXPECT_EQ(run(make(http::verb::get, "/nowhere")).result_int(), 404);
  auto wrong = run(make(http::verb::put, "/ok"));
  EXPECT_EQ(wrong.result_int(), 405);
  EXPECT_EQ(std::string(wrong[http::field::allow]), "GET, HEAD");
}

TEST_F(PipelineTest, KeepsAValidRequestIdAndReplacesAnInvalidOne) {
  auto req = make(http::verb::get, "/ok");
  req.message.set("X-Request-Id", "client-abc.123");
  EXPECT_EQ(std::string(run(std::move(req))["X-Request-Id"]), "client-abc.123");
  auto bad = make(http::verb::get, "/ok");
  bad.message.set("X-Request-Id", "has spaces in it");
  auto id = std::string(run(std::move(bad))["X-Request-Id"]);
  EXPECT_EQ(id.rfind("rid_", 0), 0u);
}

TEST_F(PipelineTest, ParsesJsonBodiesAndRefusesTheRest) {
  auto res = run(make(http::verb::post, "/echo", R"({"a":1})", "application/json; charset=utf-8"));
  EXPECT_EQ(body(res)["data"]["a"], 1);
  auto malformed = run(make(http::verb::post, "/echo", R"({"a":)", "application/json"));
  EXPECT_EQ(malformed.result_int(), 400);
  EXPECT_EQ(body(malformed)["error"]["code"], "invalid_json");
  auto form = run(make(http::verb::post, "/echo", "a=1", "application/x-www-form-urlencoded"));
  EXPECT_EQ(form.result_int(), 415);
  EXPECT_EQ(body(form)["error"]["code"], "unsupported_media_type");
}

TEST_F(PipelineTest, CorsAndSecurityHeaders) {
  auto req = make(http::verb::get, "/ok");
  req.message.set(http::field::origin, "https://app.example");
  auto res = run(std::move(req));
  EXPECT_EQ(std::string(res[http::field::access_control_allow_origin]), "https://app.example");
  EXPECT_EQ(std::string(res["X-Content-Type-Options"]), "nosniff");
  auto evil = make(http::verb::get, "/ok");
  evil.message.set(http::field::origin, "https://evil.example");
  EXPECT_EQ(run(std::move(evil)).count(http::field::access_control_allow_origin), 0u);
  auto preflight = make(http::verb::options, "/ok");
  preflight.message.set(http::field::origin, "https://app.example");
  preflight.message.set(http::field::access_control_request_method, "POST");
  auto pre = run(std::move(preflight));
  EXPECT_EQ(pre.result_int(), 204);
  EXPECT_NE(std::string(pre[http::field::access_control_allow_headers]).find("Authorization"), std::string::npos);
}

TEST_F(PipelineTest, RateLimitingAnswers429WithRetryAfter) {
  RateLimiter limiter(1, 2);
  std::vector<int> statuses;
  for (int i = 0; i < 3; ++i)
    statuses.push_back(run(make(http::verb::get, "/ok"), {middleware::rate_limit(limiter, {"/healthz"})}).result_int());
  EXPECT_EQ(statuses, (std::vector<int>{200, 200, 429}));
  auto res = run(make(http::verb::get, "/ok"), {middleware::rate_limit(limiter, {"/healthz"})});
  EXPECT_EQ(body(res)["error"]["code"], "rate_limited");
  EXPECT_EQ(std::string(res[http::field::retry_after]), "1");
}

TEST_F(PipelineTest, MetricsCountByRouteTemplate) {
  router.get("/items/{id:int}", named("item"));
  for (int i = 0; i < 3; ++i) run(make(http::verb::get, "/items/" + std::to_string(i)));
  run(make(http::verb::get, "/missing"));
  std::string text;
  metrics.render(text);
  EXPECT_NE(text.find("souq_http_requests_total{method=\"GET\",route=\"/items/{id}\",status=\"200\"} 3"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("route=\"unmatched\",status=\"404\"} 1"), std::string::npos);
  EXPECT_NE(text.find("souq_http_request_duration_seconds_count{route=\"/items/{id}\"} 3"), std::string::npos);
}
