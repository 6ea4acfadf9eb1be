// The offline responder: a fixed, helpful reply, streamed in words.
#include "llm/builtin/builtin_provider.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>

#include "core/ids.hpp"
#include "llm/upstream.hpp"

namespace parley::llm {
namespace {

class BuiltinProvider final : public Provider {
 public:
  explicit BuiltinProvider(std::string name)
      : name_(std::move(name)), model_(kBuiltinModel), models_{model_} {}

  const std::string& name() const override { return name_; }
  const char* type() const override { return "builtin"; }
  const std::vector<std::string>& models() const override { return models_; }
  const std::string& default_model() const override { return model_; }

  Task<Result<void>> chat(const ChatRequest& request, const CallLimits&, Cancellation& cancel,
                          const DeltaSink* sink, Completion& out) override {
    return run(*this, request, cancel, sink, out);
  }

 private:
  static Task<Result<void>> run(BuiltinProvider& self, const ChatRequest& request,
                                Cancellation& cancel, const DeltaSink* sink, Completion& out) {
    out.id = "builtin-" + random_hex128().substr(0, 16);
    out.model = self.model_;
    std::string reply = request.sources.empty() ? builtin_reply() : quoted_reply(request);
    if (!request.memories.empty()) {
      reply += "\n\nWhat I remember about you:";
      for (const auto& m : request.memories) reply += "\n- " + m;
    }
    out.usage.input_tokens = estimate_tokens(request.messages);
    out.usage.output_tokens = estimate_tokens(reply);
    out.usage.reported = true;  // exact for this provider: it is its own tokenizer
    if (!sink) {
      out.content = reply;
      out.finish_reason = finish::kStop;
      co_return success();
    }
    size_t start = 0;
    while (start < reply.size()) {
      if (cancel.requested()) co_return Error::cancelled("the call was cancelled");
      size_t end = reply.find(' ', start + 1);
      end = end == std::string::npos ? reply.size() : end;
      Delta delta;
      delta.content = reply.substr(start, end - start);
      out.content += delta.content;
      ++out.deltas;
      const bool keep_going = co_await (*sink)(delta);
      if (!keep_going) co_return Error::cancelled("the client stopped reading");
      start = end;
    }
    out.finish_reason = finish::kStop;
    co_return success();
  }

  std::string name_;
  std::string model_;
  std::vector<std::string> models_;
};

}  // namespace

namespace {

// Lower-cased words of three letters or more, a light plural strip: what a question and a
// sentence are compared on.
std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> out;
  std::string word;
  const auto finish = [&] {
    if (word.size() > 3 && word.back() == 's') word.pop_back();
    if (word.size() >= 3) out.push_back(word);
    word.clear();
  };
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (std::isalnum(b) != 0 || b >= 0x80) {
      word += static_cast<char>(std::tolower(b));
    } else {
      finish();
    }
  }
  finish();
  return out;
}

// Sentences of a passage (at ., !, ? followed by a space, and at line breaks).
std::vector<std::string_view> sentences_of(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool end =
        text[i] == '\n' || ((text[i] == '.' || text[i] == '!' || text[i] == '?') &&
                            (i + 1 == text.size() || text[i + 1] == ' ' || text[i + 1] == '\n'));
    if (!end) continue;
    std::string_view s = text.substr(start, i + 1 - start);
    while (!s.empty() && (s.front() == ' ' || s.front() == '\n')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\n')) s.remove_suffix(1);
    if (!s.empty()) out.push_back(s);
    start = i + 1;
  }
  std::string_view rest = text.substr(std::min(start, text.size()));
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\n')) rest.remove_prefix(1);
  if (!rest.empty()) out.push_back(rest);
  return out;
}

}  // namespace

std::string quoted_reply(const ChatRequest& request) {
  std::string question;
  for (auto it = request.messages.rbegin(); it != request.messages.rend(); ++it) {
    if (it->role == "user") {
      question = it->content;
      break;
    }
  }
  const std::vector<std::string> asked = words_of(question);
  constexpr size_t kPassages = 3;
  constexpr size_t kSentences = 2;
  std::string reply = "From your documents:";
  size_t quoted = 0;
  for (const auto& source : request.sources) {
    if (quoted == kPassages) break;
    const auto sentences = sentences_of(source.text);
    if (sentences.empty()) continue;
    // The sentences sharing the most words with the question, kept in their order.
    std::vector<std::pair<size_t, size_t>> scored;  // (shared words, index)
    for (size_t i = 0; i < sentences.size(); ++i) {
      size_t shared = 0;
      for (const auto& w : words_of(sentences[i])) {
        if (std::find(asked.begin(), asked.end(), w) != asked.end()) ++shared;
      }
      scored.emplace_back(shared, i);
    }
    std::stable_sort(scored.begin(), scored.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    std::vector<size_t> chosen;
    for (size_t i = 0; i < scored.size() && chosen.size() < kSentences; ++i) {
      if (scored[i].first > 0 || chosen.empty()) chosen.push_back(scored[i].second);
    }
    std::sort(chosen.begin(), chosen.end());
    std::string quote;
    for (size_t i : chosen) {
      if (!quote.empty()) quote += ' ';
      quote += sentences[i];
    }
    reply += "\n\n> " + quote + " [" + std::to_string(source.number) + "]";
    ++quoted;
  }
  reply +=
      "\n\n(No language model is configured, so Parley quotes the passages that match your "
      "question best instead of writing an answer.)";
  return reply;
}

std::string builtin_reply() {
  return "Parley is running, but no language model is configured, so this is a built-in "
         "reply rather than an answer. To connect a model, set one of OPENAI_API_KEY, "
         "ANTHROPIC_API_KEY or GROQ_API_KEY (or OLLAMA_BASE_URL for a local Ollama) and "
         "restart Parley, or add a provider under `providers:` in your configuration file. "
         "`parley check-config` shows what Parley sees.";
}

std::unique_ptr<Provider> make_builtin_provider(std::string name) {
  return std::make_unique<BuiltinProvider>(std::move(name));
}

}  // namespace parley::llm
