// User erasure and usage roll-ups as jobs (see builtin_jobs.hpp).
#include "queue/builtin_jobs.hpp"

#include "core/clock.hpp"
#include "obs/log.hpp"

namespace parley::queue {

using nlohmann::json;

store::NewJob user_erasure_job(const std::optional<std::string>& tenant_id,
                               std::string_view user_id, int64_t run_at_ms, int64_t max_attempts) {
  json payload = {{"tenant_id", tenant_id ? json(*tenant_id) : json(nullptr)},
                  {"user_id", user_id}};
  return store::NewJob{std::string(kUserErasure), payload.dump(), run_at_ms, max_attempts, ""};
}

Handler user_erasure(store::Storage& storage, const Clock& clock,
                     std::function<void()> keys_revoked) {
  return [&storage, &clock,
          keys_revoked = std::move(keys_revoked)](const store::Job& job) -> Result<json> {
    json payload = json::parse(job.payload_json, nullptr, false);
    if (!payload.is_object() || !payload.contains("user_id") || !payload["user_id"].is_string()) {
      return Error::invalid("the payload names no user_id");
    }
    const std::string user_id = payload["user_id"];
    std::optional<std::string> tenant_id;
    if (payload.contains("tenant_id") && payload["tenant_id"].is_string()) {
      tenant_id = payload["tenant_id"].get<std::string>();
    }
    auto counts = storage.user_data().erase_user(tenant_id, user_id, to_unix_ms(clock.now()));
    if (!counts) return std::move(counts).error();
    if (counts->api_keys > 0 && keys_revoked) keys_revoked();
    log::info("user data erased", {{"tenant_id", tenant_id.value_or("*")},
                                   {"sessions", counts->sessions},
                                   {"messages", counts->messages},
                                   {"usage_records", counts->usage_records},
                                   {"memories", counts->memories},
                                   {"revoked_api_keys", counts->api_keys}});
    return json{{"user_id", user_id},
                {"tenant_id", tenant_id ? json(*tenant_id) : json(nullptr)},
                {"deleted",
                 {{"sessions", counts->sessions},
                  {"messages", counts->messages},
                  {"usage_records", counts->usage_records},
                  {"moderation_logs", counts->moderation_logs},
                  {"idempotent_responses", counts->idempotent_responses},
                  {"memories", counts->memories},
                  {"memory_history", counts->memory_history},
                  {"jobs", counts->jobs},
                  {"knowledge_bases", counts->knowledge_bases},
                  {"files", counts->files}}},
                {"revoked_api_keys", counts->api_keys}};
  };
}

Handler usage_rollup(store::UsageRepository& usage, const Clock& clock) {
  return [&usage, &clock](const store::Job&) -> Result<json> {
    const int64_t until =
        to_unix_ms(clock.now()) -
        std::chrono::duration_cast<std::chrono::milliseconds>(kRollupMargin).count();
    auto rolled = usage.roll_up(until);
    if (!rolled) return std::move(rolled).error();
    return json{{"from", format_utc_ms(rolled->from_ms)},
                {"until", format_utc_ms(rolled->until_ms)},
                {"rows", rolled->rows}};
  };
}

Handler purge_done(store::JobRepository& jobs, const Clock& clock, std::chrono::milliseconds keep) {
  return [&jobs, &clock, keep](const store::Job&) -> Result<json> {
    auto purged = jobs.purge_done(to_unix_ms(clock.now()) - keep.count());
    if (!purged) return std::move(purged).error();
    return json{{"deleted", *purged}};
  };
}

void add_builtin_jobs(Worker& worker, store::Storage& storage, const Clock& clock,
                      const WorkerSettings& settings, std::function<void()> keys_revoked) {
  worker.handle(std::string(kUserErasure), user_erasure(storage, clock, std::move(keys_revoked)));
  worker.handle(std::string(kUsageRollup), usage_rollup(storage.usage(), clock));
  worker.handle(std::string(kPurgeDone), purge_done(storage.jobs(), clock, settings.keep_done));
  worker.every({std::string(kUsageRollup), settings.usage_rollup_interval});
  worker.every({std::string(kPurgeDone), kPurgeInterval});
}

}  // namespace parley::queue
