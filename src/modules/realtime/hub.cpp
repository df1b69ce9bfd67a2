#include "modules/realtime/hub.hpp"

#include <algorithm>

#include "core/log.hpp"

namespace souq::realtime {

std::shared_ptr<const std::string> make_frame(std::string_view event, std::string_view channel, const json& data,
                                              const std::string* user_id) {
  json frame = {{"event", event}, {"data", data.is_string() ? data : json(dump_json(data))}};
  if (!channel.empty()) frame["channel"] = channel;
  if (user_id) frame["user_id"] = *user_id;
  return std::make_shared<const std::string>(dump_json(frame));
}

bool is_presence(std::string_view channel) { return channel.rfind("presence-", 0) == 0; }
bool is_private(std::string_view channel) { return channel.rfind("private-", 0) == 0; }

namespace {

std::shared_ptr<const std::string> member_added(const std::string& channel, const std::string& user, const json& info) {
  return make_frame("pusher_internal:member_added", channel, json{{"user_id", user}, {"user_info", info}});
}

std::shared_ptr<const std::string> member_removed(const std::string& channel, const std::string& user) {
  return make_frame("pusher_internal:member_removed", channel, json{{"user_id", user}});
}

}  // namespace

Hub::Hub(std::string node_id) : node_(std::move(node_id)) {}

void Hub::send(const json& message) {
  if (send_) send_(dump_json(message));
}

void Hub::flush(Outgoing& out) {
  for (auto& [subscriber, frame] : out) subscriber->deliver(std::move(frame));
  out.clear();
}

bool Hub::present(const std::string& channel, const std::string& user, const std::string& except_node) const {
  if (except_node != node_) {
    auto it = channels_.find(channel);
    if (it != channels_.end() && it->second.members.count(user)) return true;
  }
  for (const auto& [name, node] : nodes_) {
    if (name == except_node) continue;
    auto ch = node.members.find(channel);
    if (ch != node.members.end() && ch->second.count(user)) return true;
  }
  return false;
}

void Hub::to_local(const std::string& channel, const std::shared_ptr<const std::string>& frame,
                   const std::string& except_socket, Outgoing& out) const {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  for (const auto& s : it->second.subscribers)
    if (except_socket.empty() || s->socket_id() != except_socket) out.emplace_back(s, frame);
}

Hub::Joined Hub::subscribe(const std::shared_ptr<Subscriber>& s, const std::string& channel, const Member* member) {
  Joined joined;
  Outgoing out;
  json messages = json::array();
  {
    std::lock_guard lock(mutex_);
    auto& ch = channels_[channel];
    bool already = std::any_of(ch.subscribers.begin(), ch.subscribers.end(),
                               [&](const auto& x) { return x.get() == s.get(); });
    if (!already) {
      ch.subscribers.push_back(s);
      messages.push_back({{"t", "sub"}, {"n", node_}, {"c", channel}, {"k", int64_t(ch.subscribers.size())}});
      if (member) {
        bool elsewhere = present(channel, member->user_id, node_);
        auto& [sockets, info] = ch.members[member->user_id];
        if (sockets++ == 0) {
          info = member->info;
          joined.first_socket_of_user = true;
          messages.push_back({{"t", "join"}, {"n", node_}, {"c", channel}, {"u", member->user_id}, {"i", info}});
          if (!elsewhere) to_local(channel, member_added(channel, member->user_id, info), s->socket_id(), out);
        }
      }
    }
    if (member) {
      // The members the newcomer is told of: every node's, each user once.
      json ids = json::array(), hash = json::object();
      auto add = [&](const std::string& user, const json& info) {
        if (hash.contains(user)) return;
        ids.push_back(user);
        hash[user] = info;
      };
      for (const auto& [user, entry] : ch.members) add(user, entry.second);
      for (const auto& [name, node] : nodes_) {
        auto it = node.members.find(channel);
        if (it != node.members.end())
          for (const auto& [user, info] : it->second) add(user, info);
      }
      joined.presence = {{"ids", ids}, {"hash", hash}, {"count", ids.size()}};
    }
  }
  flush(out);
  for (const auto& m : messages) send(m);
  return joined;
}

void Hub::unsubscribe(const Subscriber& s, const std::string& channel, const std::string* user_id) {
  Outgoing out;
  json messages = json::array();
  {
    std::lock_guard lock(mutex_);
    auto it = channels_.find(channel);
    if (it == channels_.end()) return;
    auto& subs = it->second.subscribers;
    auto pos = std::find_if(subs.begin(), subs.end(), [&](const auto& x) { return x.get() == &s; });
    if (pos == subs.end()) return;
    subs.erase(pos);
    messages.push_back({{"t", "sub"}, {"n", node_}, {"c", channel}, {"k", int64_t(subs.size())}});
    if (user_id) {
      auto m = it->second.members.find(*user_id);
      if (m != it->second.members.end() && --m->second.first == 0) {
        it->second.members.erase(m);
        messages.push_back({{"t", "leave"}, {"n", node_}, {"c", channel}, {"u", *user_id}});
        if (!present(channel, *user_id, node_)) to_local(channel, member_removed(channel, *user_id), {}, out);
      }
    }
    if (subs.empty()) channels_.erase(it);
  }
  flush(out);
  for (const auto& m : messages) send(m);
}

void Hub::publish(const std::string& channel, const std::shared_ptr<const std::string>& frame,
                  const std::string& except_socket) {
  Outgoing out;
  {
    std::lock_guard lock(mutex_);
    to_local(channel, frame, except_socket, out);
  }
  flush(out);
  if (send_) send({{"t", "pub"}, {"n", node_}, {"c", channel}, {"f", *frame}, {"x", except_socket}});
}

void Hub::replace_node(const std::string& name, Node next, Outgoing& out) {
  Node previous;
  if (auto it = nodes_.find(name); it != nodes_.end()) previous = std::move(it->second);
  bool leaving = next.seen == std::chrono::steady_clock::time_point{};
  if (leaving)
    nodes_.erase(name);
  else
    nodes_[name] = next;
  // Users the node had and no longer has, and the reverse, as other nodes see them.
  for (const auto& [channel, users] : previous.members)
    for (const auto& [user, info] : users) {
      auto now = next.members.find(channel);
      if ((now == next.members.end() || !now->second.count(user)) && !present(channel, user, {}))
        to_local(channel, member_removed(channel, user), {}, out);
    }
  for (const auto& [channel, users] : next.members)
    for (const auto& [user, info] : users) {
      auto before = previous.members.find(channel);
      bool had = before != previous.members.end() && before->second.count(user);
      if (!had && !present(channel, user, name)) to_local(channel, member_added(channel, user, info), {}, out);
    }
}

void Hub::receive(std::string_view text) {
  auto message = json::parse(text, nullptr, false);
  if (!message.is_object() || !message.contains("t") || !message.contains("n") || !message["t"].is_string() ||
      !message["n"].is_string()) {
    log::warn("realtime bus: unreadable message", {{"size", text.size()}});
    return;
  }
  std::string from = message["n"].get<std::string>();
  if (from == node_) return;
  std::string type = message["t"].get<std::string>();
  if (type == "node") {
    if (node_message_ && message.contains("k") && message["k"].is_string())
      node_message_(message["k"].get<std::string>(), message.value("d", json(nullptr)));
    return;
  }
  Outgoing out;
  bool reply_state = false;
  try {
    std::lock_guard lock(mutex_);
    auto now = std::chrono::steady_clock::now();
    if (type == "pub") {
      to_local(message.at("c").get<std::string>(), std::make_shared<const std::string>(message.at("f").get<std::string>()),
               message.value("x", ""), out);
    } else if (type == "bye") {
      replace_node(from, Node{}, out);
    } else if (type == "state") {
      Node next;
      next.seen = now;
      for (const auto& [channel, count] : message.at("counts").items()) next.counts[channel] = count.get<int64_t>();
      for (const auto& [channel, users] : message.at("members").items())
        for (const auto& [user, info] : users.items()) next.members[channel][user] = info;
      replace_node(from, std::move(next), out);
    } else {
      bool known = nodes_.count(from) > 0;
      auto& node = nodes_[from];
      node.seen = now;
      // A node first heard of mid-way: ask everyone for their state.
      if (!known && type != "hello") reply_state = true;
      if (type == "hello") {
        reply_state = true;
      } else if (type == "sub") {
        auto channel = message.at("c").get<std::string>();
        auto count = message.at("k").get<int64_t>();
        if (count > 0)
          node.counts[channel] = count;
        else
          node.counts.erase(channel);
      } else if (type == "join") {
        auto channel = message.at("c").get<std::string>(), user = message.at("u").get<std::string>();
        bool was = present(channel, user, {});
        node.members[channel][user] = message.value("i", json::object());
        if (!was) to_local(channel, member_added(channel, user, node.members[channel][user]), {}, out);
      } else if (type == "leave") {
        auto channel = message.at("c").get<std::string>(), user = message.at("u").get<std::string>();
        auto ch = node.members.find(channel);
        if (ch != node.members.end()) {
          ch->second.erase(user);
          if (ch->second.empty()) node.members.erase(ch);
        }
        if (!present(channel, user, {})) to_local(channel, member_removed(channel, user), {}, out);
      }
    }
  } catch (const std::exception& e) {
    log::warn("realtime bus: bad message", {{"type", type}, {"error", e.what()}});
  }
  flush(out);
  if (reply_state) {
    json state;
    {
      std::lock_guard lock(mutex_);
      state = state_message();
    }
    send(state);
    if (type != "hello") send({{"t", "hello"}, {"n", node_}});
  }
}

json Hub::state_message() const {
  json counts = json::object(), members = json::object();
  for (const auto& [channel, ch] : channels_) {
    counts[channel] = ch.subscribers.size();
    for (const auto& [user, entry] : ch.members) members[channel][user] = entry.second;
  }
  return {{"t", "state"}, {"n", node_}, {"counts", counts}, {"members", members}};
}

void Hub::heartbeat(std::chrono::steady_clock::duration expiry) {
  Outgoing out;
  {
    std::lock_guard lock(mutex_);
    auto now = std::chrono::steady_clock::now();
    std::vector<std::string> gone;
    for (const auto& [name, node] : nodes_)
      if (now - node.seen > expiry) gone.push_back(name);
    for (const auto& name : gone) {
      log::warn("realtime: node stopped answering; forgetting its subscriptions", {{"node", name}});
      replace_node(name, Node{}, out);
    }
  }
  flush(out);
  send({{"t", "hb"}, {"n", node_}});
}

void Hub::hello() {
  json state;
  {
    std::lock_guard lock(mutex_);
    state = state_message();
  }
  send({{"t", "hello"}, {"n", node_}});
  send(state);
}

void Hub::send_node_message(const std::string& topic, const json& data) {
  if (send_) send({{"t", "node"}, {"n", node_}, {"k", topic}, {"d", data}});
}

void Hub::goodbye() { send({{"t", "bye"}, {"n", node_}}); }

void Hub::clear() {
  std::unordered_map<std::string, LocalChannel> dropped;
  {
    std::lock_guard lock(mutex_);
    dropped.swap(channels_);
  }
}

ChannelInfo Hub::info(const std::string& channel) {
  std::lock_guard lock(mutex_);
  ChannelInfo info;
  std::map<std::string, bool> users;
  if (auto it = channels_.find(channel); it != channels_.end()) {
    info.subscription_count += int64_t(it->second.subscribers.size());
    for (const auto& [user, entry] : it->second.members) users[user] = true;
  }
  for (const auto& [name, node] : nodes_) {
    if (auto it = node.counts.find(channel); it != node.counts.end()) info.subscription_count += it->second;
    if (auto it = node.members.find(channel); it != node.members.end())
      for (const auto& [user, i] : it->second) users[user] = true;
  }
  info.user_count = int64_t(users.size());
  info.occupied = info.subscription_count > 0;
  return info;
}

std::vector<std::pair<std::string, ChannelInfo>> Hub::list(const std::string& prefix) {
  std::vector<std::string> names;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [channel, ch] : channels_)
      if (channel.rfind(prefix, 0) == 0) names.push_back(channel);
    for (const auto& [name, node] : nodes_)
      for (const auto& [channel, count] : node.counts)
        if (count > 0 && channel.rfind(prefix, 0) == 0) names.push_back(channel);
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::vector<std::pair<std::string, ChannelInfo>> out;
  for (const auto& name : names) out.emplace_back(name, info(name));
  return out;
}

std::vector<Member> Hub::members(const std::string& channel) {
  std::lock_guard lock(mutex_);
  std::map<std::string, json> users;
  if (auto it = channels_.find(channel); it != channels_.end())
    for (const auto& [user, entry] : it->second.members) users[user] = entry.second;
  for (const auto& [name, node] : nodes_)
    if (auto it = node.members.find(channel); it != node.members.end())
      for (const auto& [user, info] : it->second) users.emplace(user, info);
  std::vector<Member> out;
  for (auto& [user, info] : users) out.push_back({user, std::move(info)});
  return out;
}

}  // namespace souq::realtime
