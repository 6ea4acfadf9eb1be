#include "summary/summarize.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "obs/log.hpp"
#include "summary/extractive.hpp"

namespace parley::summary {
namespace {

using nlohmann::json;

// The most messages after the summary one job reads (a session far past its model's window
// is folded over a few runs, each planned by the next long turn).
constexpr int kMaxRead = 2000;
// The most of the folded conversation a model is shown (bytes): the newest messages; older
// ones are summarised extractively into the "previous" part first. One message is shown up to
// kMaxMessageBytes.
constexpr size_t kMaxShownBytes = size_t{48} * 1024;
constexpr size_t kMaxMessageBytes = size_t{8} * 1024;

int64_t tokens_of(const store::Message& m) {
  // As the prompt counts them (chat/context_window): the provider's count for replies.
  if (m.role == "assistant" && m.output_tokens > 0) return m.output_tokens + 4;
  return estimated_tokens(m.content) + 4;
}

std::string who(const std::string& role) { return role == "user" ? "User" : "Assistant"; }

// A message as the model is shown it: who said it, and at most kMaxMessageBytes of it.
std::string shown_line(const store::Message& m) {
  std::string text = m.content;
  if (text.size() > kMaxMessageBytes) {
    size_t end = kMaxMessageBytes;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    text = text.substr(0, end) + "\u2026";
  }
  return who(m.role) + ": " + text + "\n";
}

// The index of the first of `folded` a model is shown: the newest within kMaxShownBytes (and
// always the newest one).
size_t first_shown(const std::vector<store::Message>& folded) {
  size_t bytes = 0;
  size_t first = folded.size();
  while (first > 0) {
    const size_t line = shown_line(folded[first - 1]).size();
    if (bytes + line > kMaxShownBytes && first < folded.size()) break;
    bytes += line;
    --first;
  }
  return first;
}

std::vector<SaidMessage> said_of(const std::vector<store::Message>& messages) {
  std::vector<SaidMessage> out;
  out.reserve(messages.size());
  for (const auto& m : messages) out.push_back({m.role, m.content});
  return out;
}

}  // namespace

store::NewJob summarize_job(const std::string& tenant_id, const std::string& session_id,
                            int64_t history_budget, const SummarySettings& settings) {
  const json payload = {
      {"tenant_id", tenant_id}, {"session_id", session_id}, {"history_budget", history_budget}};
  return store::NewJob{std::string(kSummarizeJob), payload.dump(), 0, settings.attempts,
                       "sum:" + session_id};
}

size_t messages_to_fold(const std::vector<store::Message>& messages, int64_t history_budget,
                        const SummarySettings& settings) {
  const auto keep_budget = static_cast<int64_t>(
      settings.keep_ratio * static_cast<double>(std::max<int64_t>(history_budget, 0)));
  size_t kept = 0;
  int64_t used = 0;
  while (kept < messages.size()) {
    const store::Message& m = messages[messages.size() - 1 - kept];
    const int64_t cost = tokens_of(m);
    if (static_cast<int64_t>(kept) >= settings.keep_recent && used + cost > keep_budget) break;
    used += cost;
    ++kept;
  }
  size_t fold = messages.size() - kept;
  // A summary ends after a reply where it can, so a question and its answer stay together.
  while (fold > 0 && messages[fold - 1].role == "user") --fold;
  return fold;
}

std::vector<llm::Message> summary_request(const std::string& previous,
                                          const std::vector<store::Message>& folded,
                                          int64_t max_tokens) {
  std::string system =
      "You keep the running summary of a conversation between a user and an assistant, so the "
      "assistant can go on without the messages themselves. Write the new summary: the "
      "previous summary (if any) together with what the new messages add. Keep what the user "
      "said about themselves and their request, names, numbers, dates, decisions, what was "
      "agreed or promised, and questions still open; leave out greetings and small talk. Use "
      "short lines in the conversation's language, at most about " +
      std::to_string(max_tokens * 3 / 4) + " words. Answer with the summary only.";
  std::string conversation;
  if (!previous.empty()) conversation += "Previous summary:\n" + previous + "\n\n";
  conversation += "New messages:\n";
  for (const auto& m : folded) conversation += shown_line(m);
  std::vector<llm::Message> out(2);
  out[0].role = "system";
  out[0].content = std::move(system);
  out[1].role = "user";
  out[1].content = std::move(conversation);
  return out;
}

queue::Handler summarize_handler(SummarizeDeps deps) {
  return [deps = std::move(deps)](const store::Job& job) -> Result<json> {
    const json payload = json::parse(job.payload_json, nullptr, false);
    if (payload.is_discarded() || !payload.is_object()) {
      return Error::invalid("session.summarize payload is not a JSON object");
    }
    const std::string session_id = payload.value("session_id", std::string());
    const std::string tenant_id = payload.value("tenant_id", std::string("default"));
    const int64_t budget = payload.value("history_budget", int64_t{0});
    if (session_id.empty()) return Error::invalid("session.summarize payload names no session");
    auto& summaries = deps.storage.summaries();
    auto latest = summaries.latest(session_id);
    if (!latest) return std::move(latest).error();
    const int64_t after = *latest ? (*latest)->through_seq : 0;
    auto messages = summaries.messages_after(session_id, after, kMaxRead);
    if (!messages) return std::move(messages).error();
    const size_t fold = messages_to_fold(*messages, budget, deps.settings);
    if (fold == 0) return json{{"skipped", "nothing to fold yet"}};
    const std::vector<store::Message> folded(messages->begin(),
                                             messages->begin() + static_cast<std::ptrdiff_t>(fold));
    const std::string previous = *latest ? (*latest)->text : std::string();

    store::Summary s;
    s.session_id = session_id;
    s.method = "extractive";
    if (deps.complete) {
      // What does not fit what the model is shown joins the previous summary, extractively,
      // so that nothing the new summary claims to cover is left out of it.
      const size_t first = first_shown(folded);
      const std::vector<store::Message> older(folded.begin(),
                                              folded.begin() + static_cast<std::ptrdiff_t>(first));
      const std::vector<store::Message> shown(folded.begin() + static_cast<std::ptrdiff_t>(first),
                                              folded.end());
      const std::string before =
          older.empty() ? previous
                        : extractive_summary(previous, said_of(older), deps.settings.max_tokens);
      auto reply =
          deps.complete(tenant_id, summary_request(before, shown, deps.settings.max_tokens));
      if (!reply) return std::move(reply).error();  // retried: the provider may be back soon
      std::string text(reply->content);
      text.erase(0, text.find_first_not_of(" \t\r\n"));
      text.erase(text.find_last_not_of(" \t\r\n") + 1);
      if (!text.empty()) {
        s.text = std::move(text);
        s.method = "model";
        s.model = reply->model;
      } else {
        log::warn("the model's summary was empty; the summary is extractive",
                  {{"job_id", job.id}, {"model", reply->model}});
      }
    }
    if (s.text.empty()) {
      s.text = extractive_summary(previous, said_of(folded), deps.settings.max_tokens);
    }
    if (s.text.empty()) return json{{"skipped", "nothing worth keeping"}};
    s.first_message_id = *latest ? (*latest)->first_message_id : folded.front().id;
    s.last_message_id = folded.back().id;
    s.through_seq = folded.back().seq;
    s.messages = (*latest ? (*latest)->messages : 0) + static_cast<int64_t>(fold);
    s.tokens = estimated_tokens(s.text);
    s.created_at_ms = to_unix_ms(deps.clock.now());
    auto stored = summaries.add(s);
    if (!stored) {
      const Error& e = stored.error();
      // The session was deleted, or a newer summary got there first: nothing left to do.
      if (e.reason == "session_not_found" || e.reason == "summary_stale") {
        return json{{"skipped", e.message}};
      }
      return std::move(stored).error();
    }
    log::info("session summarised", {{"session_id", session_id},
                                     {"summary_id", stored->id},
                                     {"method", stored->method},
                                     {"messages", stored->messages},
                                     {"tokens", stored->tokens}});
    return json{{"summary_id", stored->id},
                {"method", stored->method},
                {"folded", static_cast<int64_t>(fold)},
                {"covers", stored->messages},
                {"tokens", stored->tokens}};
  };
}

Result<llm::CompleteFn> summary_model(const SummarySettings& settings, llm::Gateway& gateway,
                                      IoPool& io, llm::Accountant* accountant, const Clock& clock) {
  return llm::job_model(settings.model, gateway, io, accountant, clock,
                        {"summary", false, settings.max_tokens * 2});
}

void add_summary_jobs(queue::Worker& worker, store::Storage& storage, const Clock& clock,
                      const SummarySettings& settings, llm::CompleteFn complete) {
  worker.handle(std::string(kSummarizeJob),
                summarize_handler({storage, clock, settings, std::move(complete)}));
}

}  // namespace parley::summary
