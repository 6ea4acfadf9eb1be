// Who may call: the bootstrap `admin_key` and the `auth.*` settings, bound to AuthOptions.
#include "config/settings.hpp"
#include "auth/authenticator.hpp"

namespace parley::auth {

void declare_settings(config::Schema& schema) {
  schema.group<AuthOptions>("").secret(
      "admin_key", &AuthOptions::bootstrap_admin_key,
      "Bootstrap admin key, at least 32 characters, for the first POST /api/v1/admin/keys on a "
      "fresh install.",
      [](const std::string& t) -> std::optional<std::string> {
        if (!t.empty() && t.size() < 32) return "must be at least 32 characters";
        return std::nullopt;
      });
  schema.group<AuthOptions>("auth")
      .secret("jwt_secret", &AuthOptions::jwt_secret,
              "HS256 key (at least 32 bytes) for end-user JWT bearer tokens; empty = none.",
              [](const std::string& t) -> std::optional<std::string> {
                if (!t.empty() && t.size() < 32) return "must be at least 32 bytes";
                return std::nullopt;
              })
      .text("jwt_issuer", &AuthOptions::jwt_issuer,
            "The iss a JWT must carry; empty = not checked.")
      .text("jwt_audience", &AuthOptions::jwt_audience,
            "The aud a JWT must carry; empty = not checked.")
      .duration("key_refresh_interval", &AuthOptions::key_refresh_interval,
                "How soon keys created or revoked by another process (the CLI) take effect.",
                std::chrono::milliseconds(100), std::chrono::hours(1));
}

}  // namespace parley::auth
