// Who is subscribed to what, on this node and (as the bus reports it) on the
// others, and the fan-out of channel events to this node's sockets.
#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/json.hpp"
#include "modules/realtime/module.hpp"

namespace souq::realtime {

// A socket as the hub sees it. deliver() may be called from any thread.
class Subscriber {
 public:
  virtual ~Subscriber() = default;
  virtual const std::string& socket_id() const = 0;
  virtual void deliver(std::shared_ptr<const std::string> frame) = 0;
};

// {"event":…,"channel":…,"data":"…"} with data already a string; `user_id`
// for client events on presence channels.
std::shared_ptr<const std::string> make_frame(std::string_view event, std::string_view channel, const json& data,
                                              const std::string* user_id = nullptr);

bool is_presence(std::string_view channel);
bool is_private(std::string_view channel);  // private- (including private-encrypted-)

class Hub {
 public:
  // Sends a bus message (a JSON text) to the other nodes; unset: one node.
  using Send = std::function<void(std::string message)>;

  explicit Hub(std::string node_id);
  void set_send(Send send) { send_ = std::move(send); }
  // Messages other modules send between nodes ({"t":"node"}): topic and data.
  using NodeMessage = std::function<void(const std::string& topic, const json& data)>;
  void set_node_message(NodeMessage fn) { node_message_ = std::move(fn); }
  // Sends such a message to the other nodes (nothing without a bus).
  void send_node_message(const std::string& topic, const json& data);
  const std::string& node_id() const { return node_; }

  struct Joined {
    bool first_socket_of_user = false;
    json presence;  // {ids, hash, count} for presence channels
  };
  // Adds the subscriber; for presence channels `member` is the caller. Tells
  // the channel's other subscribers (member_added) and the other nodes.
  Joined subscribe(const std::shared_ptr<Subscriber>& s, const std::string& channel, const Member* member);
  // Removes the subscriber (no-op if absent); member_removed when the user's
  // last socket anywhere leaves.
  void unsubscribe(const Subscriber& s, const std::string& channel, const std::string* user_id);

  // To this node's subscribers and every other node's.
  void publish(const std::string& channel, const std::shared_ptr<const std::string>& frame,
               const std::string& except_socket);
  // A message from another node.
  void receive(std::string_view message);
  // Every few seconds: tells the others this node lives; forgets nodes not
  // heard from in `expiry`.
  void heartbeat(std::chrono::steady_clock::duration expiry);
  // On start (ask the others for their state) and on shutdown (say goodbye).
  void hello();
  void goodbye();

  // Lets go of every local subscriber (at shutdown, while their I/O
  // contexts still exist).
  void clear();
  ChannelInfo info(const std::string& channel);
  std::vector<std::pair<std::string, ChannelInfo>> list(const std::string& prefix);
  std::vector<Member> members(const std::string& channel);

 private:
  struct LocalChannel {
    std::vector<std::shared_ptr<Subscriber>> subscribers;
    std::map<std::string, std::pair<int, json>> members;  // user → (sockets, info)
  };
  struct Node {
    std::chrono::steady_clock::time_point seen;
    std::unordered_map<std::string, int64_t> counts;                   // channel → subscriptions
    std::unordered_map<std::string, std::map<std::string, json>> members;  // channel → user → info
  };
  using Outgoing = std::vector<std::pair<std::shared_ptr<Subscriber>, std::shared_ptr<const std::string>>>;

  // Under mutex_.
  bool present(const std::string& channel, const std::string& user, const std::string& except_node) const;
  void to_local(const std::string& channel, const std::shared_ptr<const std::string>& frame,
                const std::string& except_socket, Outgoing& out) const;
  // Replaces what is known of a node (empty `next`: it left), with the
  // member_added/removed its change makes.
  void replace_node(const std::string& node, Node next, Outgoing& out);
  json state_message() const;
  void send(const json& message);
  static void flush(Outgoing& out);

  std::string node_;
  Send send_;
  NodeMessage node_message_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, LocalChannel> channels_;
  std::map<std::string, Node> nodes_;  // the other nodes
};

}  // namespace souq::realtime
