// `limits.key.*` and `limits.user.*` (see settings.hpp).
#include "limits/settings.hpp"

#include <string>

#include "config/settings.hpp"

namespace parley::limits {
namespace {

// The seven settings of one Limits, under `prefix` ("limits.user").
template <typename Member>
void declare_limits(config::Schema& schema, const std::string& prefix, const std::string& whom,
                    Member member) {
  auto field = [member](auto pointer) {
    return [ member, pointer ](auto& s) -> auto& { return std::invoke(member, s).*pointer; };
  };
  schema.group<LimitSettings>(prefix)
      .integer("requests_per_minute", field(&Limits::requests_per_minute),
               "Requests per minute per " + whom + "; 0 = no limit.", 0, 1'000'000'000)
      .integer("requests_per_hour", field(&Limits::requests_per_hour),
               "Requests per hour per " + whom + "; 0 = no limit.", 0, 1'000'000'000)
      .integer("burst", field(&Limits::burst),
               "Requests per " + whom + " that may arrive at once; 0 = the per-minute quota.", 0,
               1'000'000'000)
      .integer("tokens_per_minute", field(&Limits::tokens_per_minute),
               "Model tokens per minute per " + whom + "; 0 = no limit.", 0, 1'000'000'000)
      .integer("concurrent_streams", field(&Limits::concurrent_streams),
               "Streamed replies open at once per " + whom + "; 0 = no limit.", 0, 1'000'000)
      .number("usd_per_day", field(&Limits::usd_per_day),
              "USD per UTC day per " + whom + "; 0 = no budget.", 0, 1e9)
      .number("usd_per_month", field(&Limits::usd_per_month),
              "USD per UTC month per " + whom + "; 0 = no budget.", 0, 1e9);
}

}  // namespace

void declare_settings(config::Schema& schema) {
  declare_limits(schema, "limits.key", "API key", &LimitSettings::key);
  declare_limits(schema, "limits.user", "end user", &LimitSettings::user);
  schema.group<LimitSettings>("limits").text(
      "on_backend_error", &LimitSettings::on_backend_error,
      "When the shared limiter (Redis) cannot answer: `deny` answers 503 (fail closed), `allow` "
      "lets requests through unlimited (fail open); counted in limiter_backend_errors_total.",
      [](const std::string& v) -> std::optional<std::string> {
        if (v == "deny" || v == "allow") return std::nullopt;
        return "must be deny or allow";
      });
  schema.group<LimitSettings>("limits").duration(
      "stream_lease", &LimitSettings::stream_lease,
      "With Redis: how long a concurrent-stream place outlives a replica that died holding it "
      "(a live one renews it every third of this).",
      std::chrono::milliseconds(300), std::chrono::hours(1));
}

}  // namespace parley::limits
