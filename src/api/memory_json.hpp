// How memories and their history read in answers: the memories API, a user's export, and the
// replies that used them. Times as UTC strings, like every other resource.
#pragma once

#include <nlohmann/json.hpp>

#include "store/memory.hpp"

namespace parley::api {

nlohmann::json memory_json(const store::Memory& memory);
nlohmann::json memory_history_json(const store::MemoryHistoryEntry& entry);

}  // namespace parley::api
