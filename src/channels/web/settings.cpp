// `web.*` (see settings.hpp).
#include "channels/web/settings.hpp"

#include "config/settings.hpp"

namespace parley::channels::web {

void declare_settings(config::Schema& schema) {
  schema.group<WebSettings>("web").flag(
      "enabled", &WebSettings::enabled,
      "Serve the web chat at / (the application is compiled into the binary).");
}

}  // namespace parley::channels::web
