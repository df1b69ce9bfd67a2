// Process definitions: ISO 8601 durations, the checks every definition
// passes, and the built-in processes loading against the registered actions.
#include <gtest/gtest.h>

#include "app/modules.hpp"
#include "modules/transactions/module.hpp"
#include "modules/transactions/process.hpp"

using namespace souq;
using namespace souq::transactions;

TEST(ProcessDuration, ReadsWeeksDaysAndTimesInOrder) {
  EXPECT_EQ(parse_duration("PT48H"), std::chrono::seconds(48 * 3600));
  EXPECT_EQ(parse_duration("P3D"), std::chrono::seconds(3 * 86400));
  EXPECT_EQ(parse_duration("P1W"), std::chrono::seconds(7 * 86400));
  EXPECT_EQ(parse_duration("P1DT12H30M5S"), std::chrono::seconds(86400 + 12 * 3600 + 30 * 60 + 5));
  EXPECT_EQ(parse_duration("PT90S"), std::chrono::seconds(90));
}

TEST(ProcessDuration, RefusesWhatIsAmbiguousMalformedOrEmpty) {
  for (const char* bad : {"", "P", "PT", "P1M", "P1Y", "P1DT", "PT1H2H", "PT1S1M", "P1D2W", "3D", "P-1D", "PT0S",
                          "P1.5D", "P11Y", "P9999999999D", "p1d"})
    EXPECT_FALSE(parse_duration(bad)) << bad;
}

namespace {

json minimal() {
  return json::parse(R"({
    "name": "flow", "version": 1, "initial": "open",
    "states": ["open", {"name": "done", "terminal": true}],
    "transitions": [{"name": "finish", "from": "open", "to": "done", "actor": "seller", "actions": ["noop"]}]
  })");
}

const ParamCheck kNone;
const ParamCheck kNeedsTo = [](const json& p) { return p.contains("to") ? "" : "\"to\" is required"; };

Process parse(const json& def) {
  return parse_process(def, "test.json", [](std::string_view name) -> const ParamCheck* {
    if (name == "noop") return &kNone;
    if (name == "tell") return &kNeedsTo;
    return nullptr;
  });
}

std::string fault(const json& def) {
  try {
    parse(def);
  } catch (const ProcessError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ProcessDefinition, AMinimalOneLoads) {
  Process p = parse(minimal());
  EXPECT_EQ(p.name, "flow");
  EXPECT_EQ(p.initial, "open");
  ASSERT_TRUE(p.transition("finish"));
  EXPECT_TRUE(p.transition("finish")->allows("seller"));
  EXPECT_FALSE(p.transition("finish")->allows("buyer"));
  EXPECT_TRUE(p.state("done")->terminal);
  EXPECT_EQ(p.checksum.size(), 64u);
  EXPECT_EQ(parse(minimal()).checksum, p.checksum) << "the checksum depends on the definition only";
}

TEST(ProcessDefinition, EachFaultIsNamedWithItsFile) {
  auto with = [](auto edit) {
    json d = minimal();
    edit(d);
    return fault(d);
  };
  EXPECT_EQ(fault(json::array()), "test.json: a process definition is a JSON object");
  EXPECT_EQ(with([](json& d) { d["name"] = "Bad Name"; }),
            "test.json: \"name\" must be 1 to 60 of a-z, 0-9 and _, starting with a letter: \"Bad Name\"");
  EXPECT_EQ(with([](json& d) { d["version"] = 0; }), "test.json: \"version\" must be a whole number from 1");
  EXPECT_EQ(with([](json& d) { d["colour"] = "red"; }), "test.json: unknown field \"colour\"");
  EXPECT_EQ(with([](json& d) { d["initial"] = "nowhere"; }), "test.json: the initial state \"nowhere\" is not among the states");
  EXPECT_EQ(with([](json& d) { d["initial"] = "done"; }), "test.json: the initial state \"done\" is terminal");
  EXPECT_EQ(with([](json& d) { d["states"].push_back("limbo"); }),
            "test.json: state \"limbo\": cannot be reached from \"open\"");
  EXPECT_EQ(with([](json& d) {
              d["states"].push_back("stuck");
              d["transitions"].push_back({{"name", "sink"}, {"from", "open"}, {"to", "stuck"}, {"actor", "buyer"}});
            }),
            "test.json: state \"stuck\": has no transition out; mark it \"terminal\": true if it is an end");
  EXPECT_EQ(with([](json& d) { d["transitions"][0]["to"] = "gone"; }),
            "test.json: transition \"finish\": unknown state \"gone\" in \"to\"");
  EXPECT_EQ(with([](json& d) { d["transitions"][0]["from"] = "done"; }),
            "test.json: transition \"finish\": leaves the terminal state \"done\"");
  EXPECT_EQ(with([](json& d) { d["transitions"][0]["actor"] = "robot"; }),
            "test.json: transition \"finish\": unknown actor \"robot\" (buyer, seller, operator or system)");
  EXPECT_EQ(with([](json& d) { d["transitions"][0]["actions"] = {"launch"}; }),
            "test.json: transition \"finish\": unknown action \"launch\"");
  EXPECT_EQ(with([](json& d) { d["transitions"][0]["actions"] = {{{"action", "tell"}}}; }),
            "test.json: transition \"finish\": action \"tell\": \"to\" is required");
  EXPECT_EQ(with([](json& d) { d["transitions"].push_back(d["transitions"][0]); }),
            "test.json: transition \"finish\": declared twice");
  EXPECT_EQ(with([](json& d) { d["transitions"][0]["name"] = "created"; }),
            "test.json: transition \"created\": \"created\" is reserved for the history entry of a new transaction");
  EXPECT_EQ(with([](json& d) { d["transitions"][0]["timer"] = {{"after", "PT1H"}}; }),
            "test.json: transition \"finish\": a timed transition is taken by the system: its actor must be \"system\"");
  EXPECT_NE(with([](json& d) {
              d["transitions"][0]["actor"] = "system";
              d["transitions"][0]["timer"] = {{"after", "P1M"}};
            }).find("must be an ISO 8601 duration"),
            std::string::npos);
  EXPECT_NE(with([](json& d) {
              d["transitions"][0]["actor"] = "system";
              d["transitions"][0]["timer"] = {{"after", "PT1H"}, {"since", "entered:nowhere"}};
            }).find("timer \"since\" must be"),
            std::string::npos);
}

TEST(ProcessDefinition, StarMeansEveryOpenState) {
  json d = minimal();
  d["transitions"].push_back({{"name", "stop"}, {"from", "*"}, {"to", "done"}, {"actor", "operator"}});
  EXPECT_EQ(parse(d).transition("stop")->from, std::vector<std::string>{"open"});
}

TEST(ProcessRegistry, TheBuiltInProcessesLoadAndAChangedVersionIsRefused) {
  Actions actions;
  app::register_all_actions(actions);
  Processes processes;
  processes.load_files(actions, "");
  ASSERT_TRUE(processes.latest("negotiation"));
  ASSERT_TRUE(processes.latest("escrow_purchase"));
  EXPECT_EQ(processes.latest("negotiation")->transition("auto_complete")->timer->after, std::chrono::hours(72));
  json changed = processes.latest("negotiation")->definition;
  changed["title"] = "edited in place";
  EXPECT_THROW(processes.add(changed, "elsewhere.json", actions), ProcessError);
  changed["version"] = 3;
  EXPECT_EQ(processes.add(changed, "elsewhere.json", actions).version, 3);
  EXPECT_EQ(processes.latest("negotiation")->version, 3);
  EXPECT_EQ(processes.find("negotiation", 2)->title, "Negotiated deal");
}
