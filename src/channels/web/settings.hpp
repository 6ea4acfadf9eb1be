// `web.*`: the web chat the server serves at / (channels/web/routes.hpp).
#pragma once

namespace parley::config {
class Schema;
}

namespace parley::channels::web {

struct WebSettings {
  bool enabled = true;
};

void declare_settings(config::Schema& schema);

}  // namespace parley::channels::web
