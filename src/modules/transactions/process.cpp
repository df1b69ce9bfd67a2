#include "modules/transactions/process.hpp"

#include <algorithm>
#include <cctype>
#include <set>

#include "core/crypto.hpp"
#include "core/validation.hpp"

namespace souq::transactions {

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  if (text.size() < 3 || text.front() != 'P') return std::nullopt;
  int64_t total = 0;
  bool in_time = false, any = false;
  // Designators must come in order, each at most once: W D, then T, H M S.
  static constexpr std::string_view kDateOrder = "WD", kTimeOrder = "HMS";
  size_t i = 1;
  char last_date = 0, last_time = 0;
  while (i < text.size()) {
    if (text[i] == 'T') {
      if (in_time) return std::nullopt;
      in_time = true;
      ++i;
      if (i == text.size()) return std::nullopt;  // "P1DT" has no time part
      continue;
    }
    size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i == start || i == text.size() || i - start > 9) return std::nullopt;
    int64_t n = std::stoll(std::string(text.substr(start, i - start)));
    char unit = text[i++];
    auto order = in_time ? kTimeOrder : kDateOrder;
    auto pos = order.find(unit);
    char& last = in_time ? last_time : last_date;
    if (pos == std::string_view::npos || (last && order.find(last) >= pos)) return std::nullopt;
    last = unit;
    int64_t scale = !in_time ? (unit == 'W' ? 7 * 86400 : 86400) : (unit == 'H' ? 3600 : unit == 'M' ? 60 : 1);
    total += n * scale;
    any = true;
  }
  if (!any || total <= 0 || total > int64_t(10) * 365 * 86400) return std::nullopt;
  return std::chrono::seconds(total);
}

bool Transition::allows(std::string_view actor) const {
  return std::find(actors.begin(), actors.end(), actor) != actors.end();
}

bool Transition::leaves(std::string_view state) const {
  return std::find(from.begin(), from.end(), state) != from.end();
}

const Transition* Process::transition(std::string_view name) const {
  for (const auto& t : transitions)
    if (t.name == name) return &t;
  return nullptr;
}

const State* Process::state(std::string_view name) const {
  for (const auto& s : states)
    if (s.name == name) return &s;
  return nullptr;
}

namespace {

json action_json(const ActionCall& a) {
  json out = a.params;
  out["action"] = a.name;
  return out;
}

json actions_json(const std::vector<ActionCall>& actions) {
  json out = json::array();
  for (const auto& a : actions) out.push_back(action_json(a));
  return out;
}

// Collects the faults of one definition; the first one ends the load.
class Reader {
 public:
  Reader(const std::string& origin, const std::function<const ParamCheck*(std::string_view)>& known)
      : origin_(origin), known_(known) {}

  [[noreturn]] void fail(const std::string& where, const std::string& fault) const {
    throw ProcessError(origin_ + ": " + (where.empty() ? "" : where + ": ") + fault);
  }

  std::string text(const json& object, const char* field, const std::string& where, bool required = true,
                   size_t max = 200) const {
    if (!object.contains(field) || object[field].is_null()) {
      if (required) fail(where, std::string("\"") + field + "\" is required");
      return "";
    }
    if (!object[field].is_string() || object[field].get<std::string>().size() > max)
      fail(where, std::string("\"") + field + "\" must be a string of at most " + std::to_string(max) + " bytes");
    return object[field].get<std::string>();
  }

  std::string name(const json& object, const char* field, const std::string& where) const {
    auto value = text(object, field, where);
    bool ok = !value.empty() && value.size() <= 60 &&
              std::all_of(value.begin(), value.end(), [](unsigned char c) {
                return (c >= 'a' && c <= 'z') || std::isdigit(c) || c == '_';
              }) &&
              std::isalpha(static_cast<unsigned char>(value.front()));
    if (!ok) fail(where, std::string("\"") + field + "\" must be 1 to 60 of a-z, 0-9 and _, starting with a letter: \"" + value + "\"");
    return value;
  }

  void only(const json& object, std::initializer_list<const char*> allowed, const std::string& where) const {
    for (const auto& item : object.items())
      if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return item.key() == a; }))
        fail(where, "unknown field \"" + item.key() + "\"");
  }

  std::vector<ActionCall> actions(const json& list, const std::string& where) const {
    if (!list.is_array()) fail(where, "actions must be a list");
    std::vector<ActionCall> out;
    for (const auto& item : list) {
      ActionCall call;
      if (item.is_string()) {
        call.name = item.get<std::string>();
      } else if (item.is_object() && item.contains("action") && item["action"].is_string()) {
        call.name = item["action"].get<std::string>();
        call.params = item;
        call.params.erase("action");
      } else {
        fail(where, "an action is a name or an object with \"action\": " + item.dump());
      }
      const ParamCheck* check = known_(call.name);
      if (!check) fail(where, "unknown action \"" + call.name + "\"");
      if (*check) {
        auto fault = (*check)(call.params);
        if (!fault.empty()) fail(where, "action \"" + call.name + "\": " + fault);
      }
      out.push_back(std::move(call));
    }
    return out;
  }

 private:
  const std::string& origin_;
  const std::function<const ParamCheck*(std::string_view)>& known_;
};

std::vector<std::string> names_or_list(const Reader& r, const json& t, const char* field, const std::string& where) {
  if (!t.contains(field)) r.fail(where, std::string("\"") + field + "\" is required");
  const json& v = t[field];
  std::vector<std::string> out;
  if (v.is_string()) out.push_back(v.get<std::string>());
  else if (v.is_array() && !v.empty() && std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_string(); }))
    for (const auto& x : v) out.push_back(x.get<std::string>());
  else r.fail(where, std::string("\"") + field + "\" must be a name or a non-empty list of names");
  std::set<std::string> unique(out.begin(), out.end());
  if (unique.size() != out.size()) r.fail(where, std::string("\"") + field + "\" names something twice");
  return out;
}

}  // namespace

Process parse_process(const json& def, const std::string& origin,
                      const std::function<const ParamCheck*(std::string_view)>& known_actions) {
  Reader r(origin, known_actions);
  if (!def.is_object()) r.fail("", "a process definition is a JSON object");
  r.only(def, {"name", "version", "title", "description", "initial", "on_create", "states", "transitions"}, "");
  Process p;
  p.name = r.name(def, "name", "");
  if (!def.contains("version") || !def["version"].is_number_integer() || def["version"].get<int64_t>() < 1 ||
      def["version"].get<int64_t>() > 1'000'000)
    r.fail("", "\"version\" must be a whole number from 1");
  p.version = def["version"].get<int>();
  p.title = r.text(def, "title", "", false);
  if (p.title.empty()) p.title = p.name;
  p.description = r.text(def, "description", "", false, 4000);
  p.origin = origin;

  if (!def.contains("states") || !def["states"].is_array() || def["states"].empty())
    r.fail("", "\"states\" must be a non-empty list");
  for (const auto& s : def["states"]) {
    State state;
    if (s.is_string()) {
      state.name = s.get<std::string>();
      json tmp = {{"name", state.name}};
      state.name = r.name(tmp, "name", "states");
    } else if (s.is_object()) {
      r.only(s, {"name", "title", "terminal"}, "states");
      state.name = r.name(s, "name", "states");
      state.title = r.text(s, "title", "state \"" + state.name + "\"", false);
      if (s.contains("terminal")) {
        if (!s["terminal"].is_boolean()) r.fail("state \"" + state.name + "\"", "\"terminal\" must be true or false");
        state.terminal = s["terminal"].get<bool>();
      }
    } else {
      r.fail("states", "a state is a name or an object");
    }
    if (state.title.empty()) state.title = state.name;
    if (p.state(state.name)) r.fail("states", "state \"" + state.name + "\" is declared twice");
    p.states.push_back(std::move(state));
  }
  p.initial = r.name(def, "initial", "");
  if (!p.state(p.initial)) r.fail("", "the initial state \"" + p.initial + "\" is not among the states");
  if (p.state(p.initial)->terminal) r.fail("", "the initial state \"" + p.initial + "\" is terminal");
  if (def.contains("on_create")) p.on_create = r.actions(def["on_create"], "on_create");

  if (!def.contains("transitions") || !def["transitions"].is_array())
    r.fail("", "\"transitions\" must be a list");
  for (const auto& t : def["transitions"]) {
    if (!t.is_object()) r.fail("transitions", "a transition is an object");
    Transition tr;
    tr.name = r.name(t, "name", "transitions");
    std::string where = "transition \"" + tr.name + "\"";
    r.only(t, {"name", "title", "from", "to", "actor", "timer", "requires_reason", "actions"}, where);
    if (tr.name == "created") r.fail(where, "\"created\" is reserved for the history entry of a new transaction");
    if (p.transition(tr.name)) r.fail(where, "declared twice");
    tr.title = r.text(t, "title", where, false);
    if (tr.title.empty()) tr.title = tr.name;
    auto from = names_or_list(r, t, "from", where);
    if (from == std::vector<std::string>{"*"}) {
      for (const auto& s : p.states)
        if (!s.terminal) tr.from.push_back(s.name);
    } else {
      for (const auto& s : from) {
        const State* state = p.state(s);
        if (!state) r.fail(where, "unknown state \"" + s + "\" in \"from\"");
        if (state->terminal) r.fail(where, "leaves the terminal state \"" + s + "\"");
      }
      tr.from = from;
    }
    tr.to = r.name(t, "to", where);
    if (!p.state(tr.to)) r.fail(where, "unknown state \"" + tr.to + "\" in \"to\"");
    tr.actors = names_or_list(r, t, "actor", where);
    for (const auto& a : tr.actors)
      if (std::none_of(std::begin(kActors), std::end(kActors), [&](const char* k) { return a == k; }))
        r.fail(where, "unknown actor \"" + a + "\" (buyer, seller, operator or system)");
    if (t.contains("requires_reason")) {
      if (!t["requires_reason"].is_boolean()) r.fail(where, "\"requires_reason\" must be true or false");
      tr.requires_reason = t["requires_reason"].get<bool>();
    }
    if (t.contains("timer")) {
      const json& timer = t["timer"];
      if (!timer.is_object()) r.fail(where, "\"timer\" must be an object with \"after\"");
      r.only(timer, {"after", "since"}, where + " timer");
      Timer tm;
      tm.after_text = r.text(timer, "after", where + " timer");
      auto after = parse_duration(tm.after_text);
      if (!after)
        r.fail(where, "timer \"after\" must be an ISO 8601 duration in weeks, days, hours, minutes or seconds, such as "
                      "PT48H or P3D (up to 10 years): \"" + tm.after_text + "\"");
      tm.after = *after;
      std::string since = r.text(timer, "since", where + " timer", false);
      if (since.empty()) {
        if (tr.from.size() != 1)
          r.fail(where, "a timer on a transition from several states needs \"since\": \"entered:<state>\" or \"created\"");
        tm.since_state = tr.from.front();
      } else if (since != "created") {
        if (since.rfind("entered:", 0) != 0 || !p.state(since.substr(8)))
          r.fail(where, "timer \"since\" must be \"created\" or \"entered:<state>\" naming a state: \"" + since + "\"");
        tm.since_state = since.substr(8);
      }
      if (tr.actors != std::vector<std::string>{"system"})
        r.fail(where, "a timed transition is taken by the system: its actor must be \"system\"");
      tr.timer = std::move(tm);
    }
    if (t.contains("actions")) tr.actions = r.actions(t["actions"], where);
    p.transitions.push_back(std::move(tr));
  }

  // Every state reachable from the initial one.
  std::set<std::string> reached = {p.initial};
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& t : p.transitions)
      if (std::any_of(t.from.begin(), t.from.end(), [&](const std::string& s) { return reached.count(s); }) &&
          reached.insert(t.to).second)
        grew = true;
  }
  for (const auto& s : p.states)
    if (!reached.count(s.name)) r.fail("state \"" + s.name + "\"", "cannot be reached from \"" + p.initial + "\"");
  // A state that is not terminal needs a way out, or transactions would stall there.
  for (const auto& s : p.states) {
    bool exits = std::any_of(p.transitions.begin(), p.transitions.end(), [&](const Transition& t) { return t.leaves(s.name); });
    if (!s.terminal && !exits)
      r.fail("state \"" + s.name + "\"", "has no transition out; mark it \"terminal\": true if it is an end");
  }

  p.definition = def;
  p.checksum = crypto::sha256_hex(def.dump());
  return p;
}

json Process::to_json() const {
  json states_out = json::array();
  for (const auto& s : states) states_out.push_back({{"name", s.name}, {"title", s.title}, {"terminal", s.terminal}});
  json transitions_out = json::array();
  for (const auto& t : transitions) {
    json item = {{"name", t.name}, {"title", t.title},  {"from", t.from},
                 {"to", t.to},     {"actors", t.actors}, {"requires_reason", t.requires_reason},
                 {"actions", actions_json(t.actions)}, {"timer", nullptr}};
    if (t.timer)
      item["timer"] = {{"after", t.timer->after_text},
                       {"after_seconds", t.timer->after.count()},
                       {"since", t.timer->since_state.empty() ? "created" : "entered:" + t.timer->since_state}};
    transitions_out.push_back(std::move(item));
  }
  return {{"name", name},
          {"version", version},
          {"title", title},
          {"description", description},
          {"initial", initial},
          {"on_create", actions_json(on_create)},
          {"states", std::move(states_out)},
          {"transitions", std::move(transitions_out)}};
}

}  // namespace souq::transactions
