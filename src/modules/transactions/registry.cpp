// The action and process registries, and loading processes at start-up.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/log.hpp"
#include "core/time.hpp"
#include "modules/transactions/module.hpp"

namespace souq::transactions {

void Actions::add(const std::string& name, ActionSpec spec) {
  if (!actions_.emplace(name, std::move(spec)).second) throw std::logic_error("action registered twice: " + name);
}

const ActionSpec* Actions::find(std::string_view name) const {
  auto it = actions_.find(name);
  return it == actions_.end() ? nullptr : &it->second;
}

std::vector<std::string> Actions::names() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : actions_) out.push_back(name);
  return out;
}

const Process& Processes::add(const json& definition, const std::string& origin, const Actions& actions) {
  std::function<const ParamCheck*(std::string_view)> known = [&](std::string_view name) -> const ParamCheck* {
    const ActionSpec* spec = actions.find(name);
    return spec ? &spec->check : nullptr;
  };
  auto p = std::make_unique<Process>(parse_process(definition, origin, known));
  auto& versions = by_name_[p->name];
  auto it = versions.find(p->version);
  if (it != versions.end()) {
    if (it->second->checksum != p->checksum)
      throw ProcessError(origin + ": process \"" + p->name + "\" version " + std::to_string(p->version) +
                         " is also defined, differently, by " + it->second->origin +
                         "; a changed process needs a new version");
    return *it->second;
  }
  return *(versions[p->version] = std::move(p));
}

const Process* Processes::latest(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() || it->second.empty() ? nullptr : it->second.rbegin()->second.get();
}

const Process* Processes::find(std::string_view name, int version) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return nullptr;
  auto v = it->second.find(version);
  return v == it->second.end() ? nullptr : v->second.get();
}

std::vector<const Process*> Processes::all_latest() const {
  std::vector<const Process*> out;
  for (const auto& [name, versions] : by_name_)
    if (!versions.empty()) out.push_back(versions.rbegin()->second.get());
  return out;
}

std::vector<const Process*> Processes::versions(std::string_view name) const {
  std::vector<const Process*> out;
  auto it = by_name_.find(name);
  if (it != by_name_.end())
    for (const auto& [_, p] : it->second) out.push_back(p.get());
  return out;
}

namespace {
json parse_definition(const std::string& text, const std::string& origin) {
  auto parsed = json::parse(text, nullptr, false);
  if (parsed.is_discarded()) throw ProcessError(origin + ": not valid JSON");
  return parsed;
}
}  // namespace

void Processes::load(db::Database& db, const Actions& actions, const std::string& dir) {
  load_files(actions, dir);
  sync(db, actions);
}

void Processes::load_files(const Actions& actions, const std::string& dir) {
  for (const auto& [file, text] : builtin_processes()) {
    std::string origin = std::string("built-in ") + file;
    add(parse_definition(text, origin), origin, actions);
  }
  if (!dir.empty()) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(dir)) throw ProcessError(dir + ": not a folder");
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.is_regular_file() && entry.path().extension() == ".json") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& path : files) {
      std::ifstream in(path);
      std::stringstream text;
      text << in.rdbuf();
      add(parse_definition(text.str(), path.string()), path.string(), actions);
    }
  }
}

void Processes::sync(db::Database& db, const Actions& actions) {
  // Versions other nodes stored: older ones that transactions still run on,
  // or newer ones loaded elsewhere. Both engines agree on one definition per
  // (name, version): a conflict stops start-up.
  struct Stored {
    std::string name, definition, checksum;
    int version;
  };
  auto stored = db.read([](db::Tx& tx) {
    std::vector<Stored> out;
    for (const auto& r : tx.query("SELECT name, version, definition, checksum FROM process_versions"))
      out.push_back({r.text("name"), r.text("definition"), r.text("checksum"), int(r.integer("version"))});
    return out;
  });
  for (const auto& s : stored) {
    std::string origin = "the database (process \"" + s.name + "\" version " + std::to_string(s.version) + ")";
    if (const Process* held = find(s.name, s.version)) {
      if (held->checksum != s.checksum)
        throw ProcessError(held->origin + ": process \"" + s.name + "\" version " + std::to_string(s.version) +
                           " differs from the one already stored in the database; a changed process needs a new version");
      continue;
    }
    add(parse_definition(s.definition, origin), origin, actions);
  }
  db.write([&](db::Tx& tx) {
    auto stamp = now_text();
    for (const auto& [name, versions] : by_name_)
      for (const auto& [version, p] : versions)
        tx.exec("INSERT INTO process_versions (name, version, definition, checksum, origin, stored_at)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                {name, version, p->definition.dump(), p->checksum, p->origin, stamp});
  });
  for (const Process* p : all_latest())
    log::info("process loaded", {{"process", p->name}, {"version", p->version}, {"origin", p->origin}});
}

void register_actions(Actions& actions) {
  actions.add("notify",
              {"Asks the notifications module to tell parties of this step (event notification.requested).",
               [](const json& params) -> std::string {
                 for (const auto& item : params.items()) {
                   if (item.key() == "to") {
                     if (!item.value().is_array() || item.value().empty()) return "\"to\" must be a list of buyer, seller";
                     for (const auto& who : item.value())
                       if (who != "buyer" && who != "seller") return "\"to\" may name buyer and seller only";
                   } else if (item.key() == "template") {
                     if (!item.value().is_string() || item.value().get<std::string>().empty())
                       return "\"template\" must be a name";
                   } else {
                     return "unknown parameter \"" + item.key() + "\"";
                   }
                 }
                 return "";
               },
               [](ActionContext& ctx) {
                 json to = ctx.params.value("to", json::array({"buyer", "seller"}));
                 json recipients = json::array();
                 for (const auto& who : to) {
                   const std::string& id = who == "buyer" ? ctx.txn.buyer_id : ctx.txn.seller_id;
                   // The one who took the step needs no news of it.
                   if (id != ctx.actor.user_id) recipients.push_back(id);
                 }
                 if (recipients.empty()) return;
                 std::string event = ctx.txn.kind + "." + ctx.transition;
                 ctx.outbox.emit(ctx.tx, "notification.requested",
                                 {{"recipients", recipients},
                                  {"template", ctx.params.value("template", event)},
                                  {"event", event},
                                  {"transaction_id", ctx.txn.id},
                                  {"kind", ctx.txn.kind},
                                  {"transition", ctx.transition},
                                  {"state", ctx.txn.state},
                                  {"title", ctx.txn.title},
                                  {"amount", ctx.txn.amount},
                                  {"currency", ctx.txn.currency},
                                  {"actor_type", ctx.actor.type},
                                  {"actor_id", ctx.actor.user_id.empty() ? json(nullptr) : json(ctx.actor.user_id)},
                                  {"buyer_id", ctx.txn.buyer_id},
                                  {"seller_id", ctx.txn.seller_id},
                                  {"reason", ctx.reason.empty() ? json(nullptr) : json(ctx.reason)}},
                                 ctx.txn.id, ctx.request_id);
               }});
}

}  // namespace souq::transactions
