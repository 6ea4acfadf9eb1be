#include "memory/extract.hpp"

#include <nlohmann/json.hpp>

#include "core/ids.hpp"
#include "memory/extract_wire.hpp"
#include "memory/recall.hpp"
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

store::NewJob conversation_extract_job(const ExtractRequest& r, int64_t max_attempts) {
  json messages = json::array();
  for (const auto& m : r.conversation) {
    messages.push_back({{"role", m.role}, {"content", m.content}});
  }
  json metadata = json::parse(r.metadata_json, nullptr, false);
  if (metadata.is_discarded() || !metadata.is_object()) metadata = json::object();
  const json payload = {{"tenant_id", r.tenant_id},        {"user_id", r.user_id},
                        {"assistant", r.assistant},        {"session_id", r.session_id},
                        {"messages", std::move(messages)}, {"metadata", std::move(metadata)}};
  return store::NewJob{
      std::string(kExtractJob), payload.dump(), 0, max_attempts,
      store::user_job_key_prefix(r.tenant_id, r.user_id) + "memx:" + new_resource_id("add")};
}

std::vector<store::MemoryDecision> decide(const std::vector<Proposal>& proposals,
                                          const std::vector<store::Memory>& existing,
                                          const ExtractRequest& turn,
                                          const MemorySettings& settings, int64_t now_ms) {
  std::vector<store::MemoryDecision> out;
  const std::string source =
      turn.user_message_id.empty() ? "[]" : json::array({turn.user_message_id}).dump();
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
    // A memory meant for this conversation only belongs to its session; with no session to
    // belong to (a Mem0 add without run_id) it is kept as any other.
    if (m.retention == "session" && turn.session_id.empty())
      m.retention = settings.default_retention;
    if (m.retention == "session") m.session_id = turn.session_id;
    m.hash = text_hash(m.text);
    m.source_json = source;
    m.expires_at_ms = expires_at(settings, m.retention, now_ms);
    // A conversation handed over whole scopes what it teaches as it was asked to.
    if (!turn.conversation.empty()) {
      if (!turn.assistant.empty()) m.assistant = turn.assistant;
      if (!turn.session_id.empty()) m.session_id = turn.session_id;
      m.metadata_json = turn.metadata_json;
    }
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<store::MemoryDecision> decide_model(const std::vector<Proposal>& proposals,
                                                const std::vector<const store::Memory*>& shown,
                                                const ExtractRequest& turn,
                                                const MemorySettings& settings, int64_t now_ms) {
  std::vector<Proposal> additions;
  std::vector<store::MemoryDecision> out;
  for (const Proposal& p : proposals) {
    if (p.event == Event::kAdd) {
      additions.push_back(p);
      continue;
    }
    if (p.ref < 0 || static_cast<size_t>(p.ref) >= shown.size()) continue;
    const store::Memory& target = *shown[static_cast<size_t>(p.ref)];
    store::MemoryDecision d;
    d.target_id = target.id;
    switch (p.event) {
      case Event::kUpdate:
        if (p.text.empty()) continue;
        d.action = store::MemoryDecision::Action::kUpdate;
        d.memory.text = p.text;
        d.memory.hash = text_hash(p.text);
        // "fact" is also what an answer without a kind reads as: the memory keeps its own.
        d.memory.kind = p.kind == "fact" ? std::string() : p.kind;
        d.memory.slot = p.slot;
        d.memory.importance = p.importance;
        d.reason = "refined by a later statement";
        break;
      case Event::kRetire:
        d.action = store::MemoryDecision::Action::kRetire;
        d.reason = "contradicted by a later statement";
        break;
      case Event::kDelete:
        d.action = store::MemoryDecision::Action::kDelete;
        d.reason = "the user asked to forget it";
        break;
      default:
        continue;
    }
    out.push_back(std::move(d));
  }
  // Retirements and deletions first: an addition may take the slot or the text they free.
  auto added = decide(additions, {}, turn, settings, now_ms);
  for (auto& d : added) out.push_back(std::move(d));
  return out;
}

namespace {

// How many of the user's memories a model is shown: the closest to the message.
constexpr int kShownToModel = 10;

struct Proposed {
  std::vector<Proposal> proposals;
  std::vector<const store::Memory*> shown;  // what the model's refs number
  std::string mode;                         // "model" or "rules"
  bool fell_back = false;                   // the model's answer was unreadable twice
};

// The memories of `existing` closest to `message` (by embedding and words), for the model.
std::vector<const store::Memory*> closest(const ExtractDeps& deps, const ExtractRequest& turn,
                                          const std::string& message,
                                          const std::vector<store::Memory>& existing, int64_t now) {
  std::vector<float> asked;
  if (deps.embed && !existing.empty()) {
    auto v = deps.embed(turn.tenant_id, {message});
    if (v && !v->empty()) asked = std::move(v->front());
  }
  std::vector<RecallCandidate> candidates;
  candidates.reserve(existing.size());
  for (const auto& m : existing) {
    candidates.push_back({&m, m.embedder == deps.embedder ? cosine(asked, m.vector) : -1});
  }
  ChooseOptions options;
  options.top_k = kShownToModel;
  options.max_tokens = INT64_MAX;
  options.min_similarity = -2;  // every memory competes; the best ten are shown
  options.always_standing = false;
  std::vector<const store::Memory*> out;
  for (const auto& chosen : choose(candidates, message, options, now)) {
    for (const auto& m : existing) {
      if (m.id == chosen.id) out.push_back(&m);
    }
  }
  return out;
}

// The rules over each thing the user said.
std::vector<Proposal> by_rules(const std::vector<std::string>& said) {
  std::vector<Proposal> out;
  for (const auto& text : said) {
    for (auto& p : extract_by_rules(text)) out.push_back(std::move(p));
  }
  return out;
}

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& part : parts) {
    if (!out.empty()) out += "\n";
    out += part;
  }
  return out;
}

Result<Proposed> propose(const ExtractDeps& deps, const store::Job& job, const ExtractRequest& turn,
                         const std::vector<std::string>& said_parts, const std::string& replied,
                         const std::vector<store::Memory>& existing, int64_t now) {
  Proposed out;
  if (!deps.complete) {
    out.mode = "rules";
    out.proposals = by_rules(said_parts);
    return out;
  }
  const std::string said = joined(said_parts);
  out.mode = "model";
  out.shown = closest(deps, turn, said, existing, now);
  std::vector<Candidate> shown;
  for (const store::Memory* m : out.shown) shown.push_back({m->text, m->kind, m->slot});
  const nlohmann::json messages = extraction_messages(said, replied, shown);
  std::vector<llm::Message> request;
  for (const auto& m : messages) {
    request.push_back({m.value("role", ""), m.value("content", ""), nullptr, {}, "", ""});
  }
  auto reply = deps.complete(turn.tenant_id, std::move(request));
  if (!reply) return std::move(reply).error();  // retried: the provider may be back soon
  auto proposals = parse_model_proposals(reply->content, out.shown.size());
  if (proposals) {
    out.proposals = std::move(*proposals);
    return out;
  }
  // Unreadable: once more (models vary), then the rules, so the turn is not lost.
  if (job.attempts < 2) return std::move(proposals).error();
  log::warn("memory extraction: the model's answer was unreadable twice; the rules extract",
            {{"job_id", job.id}, {"model", reply->model}});
  out.mode = "rules";
  out.fell_back = true;
  out.shown.clear();
  out.proposals = by_rules(said_parts);
  return out;
}

}  // namespace

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
    if (turn.user_id.empty() || (turn.user_message_id.empty() && !payload.contains("messages"))) {
      return Error::invalid("memory.extract payload names no user or message");
    }
    std::vector<std::string> said;
    std::string replied;
    if (auto given = payload.find("messages"); given != payload.end() && given->is_array()) {
      // A conversation handed over whole (a Mem0 add).
      for (const auto& m : *given) {
        if (!m.is_object()) continue;
        SaidMessage message{field(m, "role"), field(m, "content")};
        if (message.content.empty()) continue;
        if (message.role == "user") said.push_back(message.content);
        if (message.role == "assistant") replied += (replied.empty() ? "" : "\n") + message.content;
        turn.conversation.push_back(std::move(message));
      }
      if (auto meta = payload.find("metadata"); meta != payload.end() && meta->is_object()) {
        turn.metadata_json = meta->dump();
      }
      if (turn.conversation.empty()) return json{{"skipped", "no message to learn from"}};
    } else {
      auto messages = deps.storage.messages().by_ids({turn.user_message_id, turn.reply_message_id});
      if (!messages) return std::move(messages).error();
      bool found = false;
      for (const auto& m : *messages) {
        if (m.id == turn.user_message_id) {
          said.push_back(m.content);
          found = true;
        } else {
          replied = m.content;
        }
      }
      // The session was deleted, or the user erased, since the reply: nothing to remember.
      if (!found) return json{{"skipped", "the message no longer exists"}};
    }

    const int64_t now = to_unix_ms(deps.clock.now());
    auto existing =
        deps.storage.memories().user_memories(turn.tenant_id, turn.user_id, kCompareLimit, now);
    if (!existing) return std::move(existing).error();
    if (!turn.conversation.empty()) {
      // A scoped conversation is compared with the memories of its own scope.
      std::erase_if(*existing, [&](const store::Memory& m) {
        return (!turn.assistant.empty() && m.assistant != turn.assistant) ||
               (!turn.session_id.empty() && m.session_id != turn.session_id);
      });
    }
    auto proposed = propose(deps, job, turn, said, replied, *existing, now);
    if (!proposed) return std::move(proposed).error();
    const bool by_model = proposed->mode == "model";
    if (proposed->proposals.empty()) {
      return json{{"mode", proposed->mode}, {"proposed", 0}, {"results", json::array()}};
    }
    std::vector<store::MemoryDecision> decisions =
        by_model ? decide_model(proposed->proposals, proposed->shown, turn, deps.settings, now)
                 : decide(proposed->proposals, *existing, turn, deps.settings, now);

    if (deps.embed) {
      std::vector<std::string> texts;
      for (const auto& d : decisions) {
        if (d.action == store::MemoryDecision::Action::kAdd ||
            d.action == store::MemoryDecision::Action::kUpdate) {
          texts.push_back(d.memory.text);
        }
      }
      if (!texts.empty()) {
        auto vectors = deps.embed(turn.tenant_id, texts);
        if (!vectors) return std::move(vectors).error();
        size_t next = 0;
        for (auto& d : decisions) {
          const bool has_text = d.action == store::MemoryDecision::Action::kAdd ||
                                d.action == store::MemoryDecision::Action::kUpdate;
          if (!has_text || next >= vectors->size()) continue;
          d.memory.embedder = deps.embedder;
          d.memory.vector = std::move((*vectors)[next++]);
        }
      }
    }
    store::MemoryEdit edit;
    edit.actor = by_model ? "extractor:model" : "extractor:rules";
    edit.source_json =
        turn.user_message_id.empty() ? "[]" : json::array({turn.user_message_id}).dump();
    edit.job_id = job.id;
    auto applied =
        deps.storage.memories().apply(turn.tenant_id, turn.user_id, decisions, edit, now);
    if (!applied) return std::move(applied).error();
    json results = json::array();
    for (const auto& r : applied->results) {
      json result = {{"event", r.event}, {"id", r.memory.id}, {"kind", r.memory.kind}};
      // The caller of a conversation's extraction reads what was remembered (the words are in
      // the payload already; erasure deletes both).
      if (!turn.conversation.empty()) {
        result["memory"] = r.memory.text;
        if (r.previous_text) result["previous_memory"] = *r.previous_text;
      }
      results.push_back(std::move(result));
    }
    if (!applied->results.empty()) {
      log::info("memories extracted", {{"tenant_id", turn.tenant_id},
                                       {"session_id", turn.session_id},
                                       {"job_id", job.id},
                                       {"mode", proposed->mode},
                                       {"changes", static_cast<int64_t>(applied->results.size())}});
    }
    json answer = {{"mode", proposed->mode},
                   {"proposed", static_cast<int64_t>(proposed->proposals.size())},
                   {"replayed", applied->replayed},
                   {"results", std::move(results)}};
    if (proposed->fell_back) answer["fallback"] = "rules";
    return answer;
  };
}

}  // namespace parley::memory
