// The chat module's settings: `chat.*` and the `assistants:` section (chat/assistants.hpp
// holds the types).
#pragma once

#include "chat/assistants.hpp"

namespace parley::config {
class Schema;
}

namespace parley::chat {

void declare_settings(config::Schema& schema);

}  // namespace parley::chat
