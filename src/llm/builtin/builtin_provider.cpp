// The offline responder: a fixed, helpful reply, streamed in words.
#include "llm/builtin/builtin_provider.hpp"

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
    const std::string reply = builtin_reply();
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
