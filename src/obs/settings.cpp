// `log.level` (see log.hpp). The access log's switch belongs to the HTTP server
// (http/settings.cpp).
#include <algorithm>
#include <vector>

#include "config/settings.hpp"
#include "obs/log.hpp"

namespace parley::log {

void declare_settings(config::Schema& schema) {
  schema.group<LogSettings>("log").text(
      "level", &LogSettings::level, "trace, debug, info, warn, error or off.",
      [](const std::string& text) -> std::optional<std::string> {
        static const std::vector<std::string> kLevels{"trace", "debug", "info",
                                                      "warn",  "error", "off"};
        if (std::find(kLevels.begin(), kLevels.end(), text) == kLevels.end())
          return "unknown level (expected trace, debug, info, warn, error or off)";
        return std::nullopt;
      });
}

}  // namespace parley::log
