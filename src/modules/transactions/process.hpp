// A process: the declared state machine a transaction moves through (see
// ARCHITECTURE.md, "The domain in one picture"). Processes are JSON, loaded
// from built-in definitions and an operator's folder, validated when loaded,
// and versioned: a transaction stays on the version it started with.
//
//   {
//     "name": "negotiation", "version": 1, "title": "…", "description": "…",
//     "initial": "accepted",
//     "on_create": ["close_request", {"action": "notify", "to": ["buyer", "seller"]}],
//     "states": [{"name": "accepted"}, {"name": "completed", "terminal": true}, …],
//     "transitions": [
//       {"name": "deliver", "from": "in_progress", "to": "delivered", "actor": "seller",
//        "actions": ["notify"]},
//       {"name": "auto_complete", "from": "delivered", "to": "completed", "actor": "system",
//        "timer": {"after": "P3D", "since": "entered:delivered"}},
//       …]
//   }
//
// `from` is a state or a list of states ("*" for every non-terminal state);
// `actor` is one of buyer, seller, operator, system, or a list of them.
#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.hpp"

namespace souq::transactions {

// A definition that cannot be loaded: the message names where it came from
// and what is wrong ("processes/escrow.json: transition \"ship\": unknown state \"sent\"").
class ProcessError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "PT48H", "P3D", "P1W", "P1DT12H", "PT30M", "PT90S". Years and months are
// refused (their length varies). nullopt when malformed or not positive.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);

inline constexpr const char* kActors[] = {"buyer", "seller", "operator", "system"};

struct ActionCall {
  std::string name;
  json params = json::object();  // the object form's other fields
};

struct Timer {
  std::chrono::seconds after{0};
  std::string after_text;  // as written, for clients
  // The clock starts when the transaction entered this state; empty: when it
  // was created.
  std::string since_state;
};

struct Transition {
  std::string name;
  std::string title;
  std::vector<std::string> from;
  std::string to;
  std::vector<std::string> actors;
  std::optional<Timer> timer;
  bool requires_reason = false;
  std::vector<ActionCall> actions;

  bool allows(std::string_view actor) const;
  bool leaves(std::string_view state) const;
};

struct State {
  std::string name;
  std::string title;
  bool terminal = false;
};

struct Process {
  std::string name;
  int version = 0;
  std::string title, description;
  std::string initial;
  std::vector<ActionCall> on_create;
  std::vector<State> states;
  std::vector<Transition> transitions;
  json definition;       // as loaded
  std::string checksum;  // SHA-256 of the definition's canonical text, hex
  std::string origin;    // "built-in", a file path, or "database"

  const Transition* transition(std::string_view name) const;
  const State* state(std::string_view name) const;
  json to_json() const;
};

// What an action's parameters may be: returns a fault ("" when fine).
using ParamCheck = std::function<std::string(const json& params)>;

// Parses and validates a definition: every field well-formed, every state
// reachable from the initial one, every non-terminal state with a way out,
// every action known to `known_actions` with parameters it accepts, every
// timer well-formed and on a system transition. Throws ProcessError naming
// `origin` and the fault.
Process parse_process(const json& definition, const std::string& origin,
                      const std::function<const ParamCheck*(std::string_view action)>& known_actions);

}  // namespace souq::transactions
