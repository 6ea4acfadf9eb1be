// The `parley copy-data` subcommand (see copy_data_cli.hpp).
#include "app/copy_data_cli.hpp"

#include <cstdio>
#include <filesystem>

#include "config/settings.hpp"
#include "store/copy.hpp"
#include "store/settings.hpp"

namespace parley::app {
namespace {

int fail(const std::string& message) {
  std::fprintf(stderr, "parley: copy-data: %s\n", message.c_str());
  return 1;
}

}  // namespace

int run_copy_data_command(const CopyDataCommand& command) {
  store::StorageSettings from;
  from.url = command.from;
  store::StorageSettings to;
  to.url = command.to;
  for (const auto* url : {&command.from, &command.to}) {
    if (url->empty()) return fail("--from and --to both name a database URL");
  }
  // Opening a SQLite file creates it; a source that does not exist is a mistake, not an
  // empty installation.
  if (auto path = store::sqlite_path(from); path && !std::filesystem::exists(*path)) {
    return fail("no database at " + *path);
  }
  const std::string from_name = config::redact_url(command.from);
  const std::string to_name = config::redact_url(command.to);
  store::OpenOptions source_options;
  source_options.migrate = false;
  source_options.connections = 1;
  auto source = store::open(from, source_options);
  if (!source) return fail("source " + from_name + ": " + source.error().message);
  store::OpenOptions destination_options;
  destination_options.connections = 1;
  auto destination = store::open(to, destination_options);
  if (!destination) return fail("destination " + to_name + ": " + destination.error().message);

  std::fprintf(stderr, "copying %s -> %s\n", from_name.c_str(), to_name.c_str());
  auto report = store::copy_data(
      **source, **destination, command.batch_rows, [](const std::string& table, int64_t rows) {
        std::fprintf(stderr, "  %s: %lld rows\r", table.c_str(), static_cast<long long>(rows));
      });
  std::fprintf(stderr, "\n");
  (*source)->close();
  (*destination)->close();
  if (!report) return fail(report.error().message);
  for (const auto& t : report->tables) {
    std::printf("%-18s %lld\n", t.table.c_str(), static_cast<long long>(t.rows));
  }
  std::printf("%-18s %lld\n", "total", static_cast<long long>(report->total_rows()));
  std::fprintf(stderr, "copied; every table's rows were counted on both sides\n");
  return 0;
}

}  // namespace parley::app
