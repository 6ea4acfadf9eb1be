// `parley backup --to FILE` and `parley restore --from FILE`: the SQLite database copied while
// the server runs, and put back while it is stopped (store/sqlite/backup.hpp). A PostgreSQL
// installation is backed up with PostgreSQL's own tools (README, "Backups").
#pragma once

#include <string>

#include "config/settings.hpp"

namespace parley::app {

int run_backup_command(const config::Settings& settings, const std::string& to);
int run_restore_command(const config::Settings& settings, const std::string& from);

}  // namespace parley::app
