#include <gtest/gtest.h>

#include "modules/realtime/bus.hpp"
#include "modules/realtime/hub.hpp"

using namespace souq;
using namespace souq::realtime;

namespace {

// A socket that keeps what it is sent.
class Recorder : public Subscriber {
 public:
  explicit Recorder(std::string id) : id_(std::move(id)) {}
  const std::string& socket_id() const override { return id_; }
  void deliver(std::shared_ptr<const std::string> frame) override { frames.push_back(json::parse(*frame)); }
  std::vector<std::string> events() const {
    std::vector<std::string> out;
    for (const auto& f : frames) out.push_back(f["event"].get<std::string>());
    return out;
  }
  std::vector<json> frames;

 private:
  std::string id_;
};

// Two nodes whose bus is a direct call, in order.
struct TwoNodes {
  Hub a{"node-a"}, b{"node-b"};
  TwoNodes() {
    a.set_send([this](std::string m) { b.receive(m); });
    b.set_send([this](std::string m) { a.receive(m); });
  }
};

}  // namespace

TEST(Realtime, ChannelNamesAndSocketIds) {
  EXPECT_TRUE(valid_channel("private-user.usr_01abc"));
  EXPECT_TRUE(valid_channel("presence-conversation.conv_1;x=y@z,"));
  EXPECT_FALSE(valid_channel(""));
  EXPECT_FALSE(valid_channel("has space"));
  EXPECT_FALSE(valid_channel("hash#"));
  EXPECT_FALSE(valid_channel(std::string(165, 'a')));
  EXPECT_TRUE(valid_channel(std::string(164, 'a')));
  EXPECT_TRUE(valid_socket_id("123.456"));
  EXPECT_FALSE(valid_socket_id("123"));
  EXPECT_FALSE(valid_socket_id(".456"));
  EXPECT_FALSE(valid_socket_id("12a.456"));
}

TEST(Realtime, RedisUrlsAndReplies) {
  auto a = parse_redis_url("redis://:pw@10.0.0.5:6380/2");
  EXPECT_EQ(a.host, "10.0.0.5");
  EXPECT_EQ(a.port, "6380");
  EXPECT_EQ(a.password, "pw");
  EXPECT_EQ(a.db, 2);
  EXPECT_EQ(parse_redis_url("redis://localhost").port, "6379");
  EXPECT_THROW(parse_redis_url("http://x"), std::invalid_argument);
  EXPECT_THROW(parse_redis_url("redis://x:1/abc"), std::invalid_argument);

  EXPECT_EQ(resp_command({"PUBLISH", "c", "hi"}), "*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$2\r\nhi\r\n");
  std::string push = "*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$5\r\nhello\r\n:1\r\n";
  size_t pos = 0;
  auto r = parse_resp(push, pos);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->items.size(), 3u);
  EXPECT_EQ(r->items[2].text, "hello");
  auto n = parse_resp(push, pos);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->number, 1);
  EXPECT_EQ(pos, push.size());
  // Incomplete input waits for more, without moving.
  size_t p2 = 0;
  EXPECT_FALSE(parse_resp(push.substr(0, 20), p2));
  EXPECT_EQ(p2, 0u);
  size_t p3 = 0;
  EXPECT_THROW(parse_resp("?what\r\n", p3), std::runtime_error);
}

TEST(Realtime, PresenceIsPerUserAcrossSocketsAndNodes) {
  TwoNodes nodes;
  auto watcher = std::make_shared<Recorder>("1.1");
  auto amal1 = std::make_shared<Recorder>("2.1"), amal2 = std::make_shared<Recorder>("2.2");
  auto badr = std::make_shared<Recorder>("3.1");
  const std::string ch = "presence-room.1";
  Member watcher_m{"usr_w", {{"name", "W"}}}, amal{"usr_a", {{"name", "Amal"}}}, badr_m{"usr_b", {{"name", "Badr"}}};

  nodes.a.subscribe(watcher, ch, &watcher_m);
  // Amal's first socket, on the other node: the watcher hears of her once.
  auto joined = nodes.b.subscribe(amal1, ch, &amal);
  EXPECT_EQ(joined.presence["count"], 2);
  EXPECT_EQ(watcher->events(), std::vector<std::string>{"pusher_internal:member_added"});
  // Her second socket, on node A: nobody hears anything.
  nodes.a.subscribe(amal2, ch, &amal);
  EXPECT_EQ(watcher->frames.size(), 1u);
  EXPECT_EQ(nodes.a.info(ch).user_count, 2);
  EXPECT_EQ(nodes.a.info(ch).subscription_count, 3);
  // One of her sockets leaves: still present.
  nodes.b.unsubscribe(*amal1, ch, &amal.user_id);
  EXPECT_EQ(watcher->frames.size(), 1u);
  // The last leaves: removed, once.
  nodes.a.unsubscribe(*amal2, ch, &amal.user_id);
  ASSERT_EQ(watcher->frames.size(), 2u);
  EXPECT_EQ(watcher->frames[1]["event"], "pusher_internal:member_removed");
  EXPECT_EQ(json::parse(watcher->frames[1]["data"].get<std::string>())["user_id"], "usr_a");

  // A node that leaves takes its members with it.
  nodes.b.subscribe(badr, ch, &badr_m);
  ASSERT_EQ(watcher->frames.size(), 3u);
  nodes.b.goodbye();
  ASSERT_EQ(watcher->frames.size(), 4u);
  EXPECT_EQ(watcher->frames[3]["event"], "pusher_internal:member_removed");
  EXPECT_EQ(nodes.a.members(ch).size(), 1u);
}

TEST(Realtime, PublishesReachEveryNodeButTheExcludedSocket) {
  TwoNodes nodes;
  auto x = std::make_shared<Recorder>("1.1"), y = std::make_shared<Recorder>("1.2"), z = std::make_shared<Recorder>("1.3");
  nodes.a.subscribe(x, "private-c", nullptr);
  nodes.b.subscribe(y, "private-c", nullptr);
  nodes.b.subscribe(z, "private-c", nullptr);
  nodes.a.publish("private-c", make_frame("client-typing", "private-c", json::object()), "1.2");
  EXPECT_EQ(x->frames.size(), 1u);
  EXPECT_EQ(y->frames.size(), 0u);
  EXPECT_EQ(z->frames.size(), 1u);
  EXPECT_EQ(nodes.a.info("private-c").subscription_count, 3);
  // A node that comes late learns the others' state by asking.
  Hub c("node-c");
  c.set_send([&](std::string m) { nodes.a.receive(m); });
  nodes.a.set_send([&](std::string m) { c.receive(m); nodes.b.receive(m); });
  nodes.b.set_send([&](std::string m) { nodes.a.receive(m); c.receive(m); });
  c.set_send([&](std::string m) { nodes.a.receive(m); nodes.b.receive(m); });
  c.hello();
  EXPECT_EQ(c.info("private-c").subscription_count, 3);
}
