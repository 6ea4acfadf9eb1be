#include "memory/extract.hpp"

#include <nlohmann/json.hpp>

#include "memory/text.hpp"
#include "obs/log.hpp"

namespace parley::memory {
namespace {

using nlohmann::json;

// How many of the user's memories a "forget" or a new proposal is compared with.
constexpr int kCompareLimit = 2000;

std::string field(const json& payload, const char* name) {
  auto it = payload.find(name);
  return it != payload.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The memories a rules "forget" names: those holding its slot, else those whose text is the
// query or contains it.
std::vector<const store::Memory*> named_by(const Proposal& p,
                                           const std::vector<store::Memory>& existing) {
  std::vector<const store::Memory*> out;
  if (!p.slot.empty()) {
    for (const auto& m : existing) {
      if (m.slot == p.slot) out.push_back(&m);
    }
    if (!out.empty()) return out;
  }
  std::string query = normalized(p.query.empty() ? p.text : p.query);
  if (query.rfind("my ", 0) == 0) query.erase(0, 3);
  if (query.size() < 3) return out;
  for (const auto& m : existing) {
    const std::string text = normalized(m.text);
    if (text == query || text.find(query) != std::string::npos || m.slot == query) {
      out.push_back(&m);
    }
  }
  return out;
}

}  // namespace

store::NewJob extract_job(const ExtractRequest& r, int64_t max_attempts) {
  const json payload = {{"tenant_id", r.tenant_id},
                        {"user_id", r.user_id},
                        {"assistant", r.assistant},
                        {"session_id", r.session_id},
                        {"user_message_id", r.user_message_id},
                        {"reply_message_id", r.reply_message_id}};
  return store::NewJob{std::string(kExtractJob), payload.dump(), 0, max_attempts,
                       "memx:" + r.reply_message_id};
}

std::vector<store::MemoryDecision> decide(const std::vector<Proposal>& proposals,
                                          const std::vector<store::Memory>& existing,
                                          const ExtractRequest& turn,
                                          const MemorySettings& settings, int64_t now_ms) {
  std::vector<store::MemoryDecision> out;
  const std::string source = json::array({turn.user_message_id}).dump();
  for (const Proposal& p : proposals) {
    if (p.event == Event::kDelete) {
      for (const store::Memory* m : named_by(p, existing)) {
        store::MemoryDecision d;
        d.action = store::MemoryDecision::Action::kDelete;
        d.target_id = m->id;
        d.reason = "the user asked to forget it";
        out.push_back(std::move(d));
      }
      continue;
    }
    if (p.event != Event::kAdd || p.text.empty()) continue;
    store::MemoryDecision d;
    store::NewMemory& m = d.memory;
    m.tenant_id = turn.tenant_id;
    m.user_id = turn.user_id;
    m.text = p.text;
    m.kind = p.kind;
    m.slot = p.slot;
    m.importance = p.importance;
    m.retention = is_retention(p.retention) ? p.retention : settings.default_retention;
    // A memory meant for this conversation only belongs to its session.
    if (m.retention == "session") m.session_id = turn.session_id;
    m.hash = text_hash(m.text);
    m.source_json = source;
    m.expires_at_ms = expires_at(settings, m.retention, now_ms);
    out.push_back(std::move(d));
  }
  return out;
}

queue::Handler extract_handler(ExtractDeps deps) {
  return [deps = std::move(deps)](const store::Job& job) -> Result<json> {
    const json payload = json::parse(job.payload_json, nullptr, false);
    if (payload.is_discarded() || !payload.is_object()) {
      return Error::invalid("memory.extract payload is not a JSON object");
    }
    ExtractRequest turn;
    turn.tenant_id = field(payload, "tenant_id");
    turn.user_id = field(payload, "user_id");
    turn.assistant = field(payload, "assistant");
    turn.session_id = field(payload, "session_id");
    turn.user_message_id = field(payload, "user_message_id");
    turn.reply_message_id = field(payload, "reply_message_id");
    if (turn.user_id.empty() || turn.user_message_id.empty()) {
      return Error::invalid("memory.extract payload names no user or message");
    }
    auto messages = deps.storage.messages().by_ids({turn.user_message_id});
    if (!messages) return std::move(messages).error();
    // The session was deleted, or the user erased, since the reply: nothing to remember.
    if (messages->empty()) return json{{"skipped", "the message no longer exists"}};
    const std::string& said = messages->front().content;

    const int64_t now = to_unix_ms(deps.clock.now());
    const std::vector<Proposal> proposals = extract_by_rules(said);
    if (proposals.empty())
      return json{{"mode", "rules"}, {"proposed", 0}, {"results", json::array()}};
    auto existing =
        deps.storage.memories().user_memories(turn.tenant_id, turn.user_id, kCompareLimit, now);
    if (!existing) return std::move(existing).error();
    std::vector<store::MemoryDecision> decisions =
        decide(proposals, *existing, turn, deps.settings, now);

    if (deps.embed) {
      std::vector<std::string> texts;
      for (const auto& d : decisions) {
        if (d.action == store::MemoryDecision::Action::kAdd) texts.push_back(d.memory.text);
      }
      if (!texts.empty()) {
        auto vectors = deps.embed(turn.tenant_id, texts);
        if (!vectors) return std::move(vectors).error();
        size_t next = 0;
        for (auto& d : decisions) {
          if (d.action != store::MemoryDecision::Action::kAdd || next >= vectors->size()) continue;
          d.memory.embedder = deps.embedder;
          d.memory.vector = std::move((*vectors)[next++]);
        }
      }
    }
    store::MemoryEdit edit;
    edit.actor = "extractor:rules";
    edit.source_json = json::array({turn.user_message_id}).dump();
    edit.job_id = job.id;
    auto applied =
        deps.storage.memories().apply(turn.tenant_id, turn.user_id, decisions, edit, now);
    if (!applied) return std::move(applied).error();
    json results = json::array();
    for (const auto& r : applied->results) {
      results.push_back({{"event", r.event}, {"id", r.memory.id}, {"kind", r.memory.kind}});
    }
    if (!applied->results.empty()) {
      log::info("memories extracted", {{"tenant_id", turn.tenant_id},
                                       {"session_id", turn.session_id},
                                       {"job_id", job.id},
                                       {"changes", static_cast<int64_t>(applied->results.size())}});
    }
    return json{{"mode", "rules"},
                {"proposed", static_cast<int64_t>(proposals.size())},
                {"replayed", applied->replayed},
                {"results", std::move(results)}};
  };
}

}  // namespace parley::memory
