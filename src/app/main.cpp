// parley: the command line. Subcommands:
//   serve         run the server (the default way to use Parley)
//   check-config  print the effective configuration, or every problem with it
//   config reference [--markdown]   every setting with its default and meaning
//   worker        run background jobs from the database's queue (beside serve replicas)
//   migrate       create or upgrade the database schema, then exit
//   keys          create, list and revoke API keys
//   copy-data     copy every row from one database to another (SQLite to PostgreSQL)
//   backup        copy the live SQLite database to a file; restore puts one back
//   version       print version, commit and compiler
#include <chrono>
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "app/backup_cli.hpp"
#include "app/build_info.hpp"
#include "app/copy_data_cli.hpp"
#include "app/keys_cli.hpp"
#include "app/server_app.hpp"
#include "app/settings.hpp"
#include "app/worker_app.hpp"
#include "config/settings.hpp"
#include "obs/log.hpp"
#include "store/settings.hpp"

namespace {

using parley::config::Loaded;
using parley::config::Sources;

constexpr int kConfigErrorExit = 2;

// The flags every subcommand that reads configuration shares.
struct ConfigFlags {
  std::string config_file;
  std::string listen;
  std::string data_dir;
  std::vector<std::string> sets;

  void add_to(CLI::App* cmd, bool with_listen) {
    cmd->add_option("-c,--config", config_file, "YAML configuration file")
        ->envname("PARLEY_CONFIG");
    if (with_listen)
      cmd->add_option("--listen", listen, "Address to serve on, HOST:PORT (server.listen)");
    cmd->add_option("--data-dir", data_dir, "Data directory (data_dir)");
    cmd->add_option("--set", sets,
                    "Override any setting: --set server.max_body_size=2MiB (repeatable)");
  }

  Loaded load() const {
    const auto& schema = parley::app::settings_schema();
    Sources sources;
    if (!config_file.empty()) sources.config_file = config_file;
    sources.environment = parley::config::load_environment();
    sources.foreign_environment = parley::config::load_environment(schema.environment_names());
    sources.environment.erase("PARLEY_CONFIG");  // consumed by --config above
    if (!listen.empty()) sources.overrides.emplace_back("server.listen", listen);
    if (!data_dir.empty()) sources.overrides.emplace_back("data_dir", data_dir);
    for (const auto& s : sets) {
      auto eq = s.find('=');
      if (eq == std::string::npos) {
        sources.overrides.emplace_back(s, "");  // reported below as a problem with the key
      } else {
        sources.overrides.emplace_back(s.substr(0, eq), s.substr(eq + 1));
      }
    }
    Loaded loaded = parley::config::load(schema, sources);
    for (const auto& s : sets) {
      if (s.find('=') == std::string::npos) {
        loaded.problems.push_back({s, "", "flag --set", "expected --set KEY=VALUE"});
      }
    }
    return loaded;
  }
};

void print_problems(const Loaded& loaded) {
  for (const auto& p : loaded.problems) {
    std::fprintf(stderr, "error: %s\n", parley::config::to_string(p).c_str());
  }
  std::fprintf(stderr, "%zu configuration problem%s found\n", loaded.problems.size(),
               loaded.problems.size() == 1 ? "" : "s");
}

std::string version_line() {
  const auto& b = parley::app::build_info();
  return "parley " + b.version + " (commit " + b.commit + ", " + b.compiler + ", " + b.build_type +
         ")";
}

std::string settings_help() {
  return "\nSettings (YAML key, PARLEY_<KEY> env var, or --set key=value):\n" +
         parley::config::reference_text(parley::app::settings_schema());
}

}  // namespace

int main(int argc, char** argv) {
  const auto process_started = std::chrono::steady_clock::now();
  CLI::App app{"Parley: a conversational-AI server."};
  app.set_version_flag("--version", version_line());
  app.footer(settings_help());
  app.require_subcommand(1);

  ConfigFlags serve_flags, check_flags, migrate_flags, keys_flags, backup_flags, restore_flags,
      worker_flags;
  auto* serve = app.add_subcommand("serve", "Run the HTTP server.");
  serve_flags.add_to(serve, true);
  parley::app::ServeFlags serve_options;
  serve->add_flag("--insecure-no-auth", serve_options.insecure_no_auth,
                  "Serve a non-loopback address with no API key configured (anyone who can "
                  "reach it is an admin)");

  auto* worker = app.add_subcommand(
      "worker", "Run background jobs from the database's queue (beside serve replicas).");
  worker_flags.add_to(worker, false);

  bool as_json = false;
  auto* check = app.add_subcommand("check-config",
                                   "Validate the configuration and print it (secrets redacted).");
  check_flags.add_to(check, true);
  check->add_flag("--json", as_json, "Print JSON instead of YAML");

  bool markdown = false;
  auto* config_cmd = app.add_subcommand("config", "About the settings themselves.");
  config_cmd->require_subcommand(1);
  auto* reference =
      config_cmd->add_subcommand("reference", "Every setting with its default and meaning.");
  reference->add_flag("--markdown", markdown, "A Markdown table (the README's)");

  auto* migrate =
      app.add_subcommand("migrate", "Create or upgrade the database schema, then exit.");
  migrate_flags.add_to(migrate, false);

  parley::app::KeysCommand keys_command;
  auto* keys = app.add_subcommand("keys", "Create, list and revoke API keys.");
  keys->require_subcommand(1);
  auto* keys_create = keys->add_subcommand("create", "Create a key and print it (once).");
  keys_flags.add_to(keys_create, false);
  keys_create->add_option("--scope", keys_command.scope, "admin, service or user")->required();
  keys_create->add_option("--name", keys_command.name, "What the key is for");
  keys_create->add_option("--tenant", keys_command.tenant_id, "Tenant (default: default)");
  keys_create->add_option("--user", keys_command.user_id, "The user a user key acts for");
  keys_create->add_option("--expires", keys_command.expires, "30d, 12h, or 2026-12-31");
  keys_create->add_option("--limits", keys_command.limits_json,
                          R"(Overrides, JSON: {"key":{"requests_per_minute":600}})");
  auto* keys_list = keys->add_subcommand("list", "List keys (never their secrets).");
  keys_flags.add_to(keys_list, false);
  keys_list->add_flag("--all", keys_command.include_revoked, "Include revoked keys");
  keys_list->add_flag("--json", keys_command.json, "Print JSON");
  auto* keys_revoke = keys->add_subcommand("revoke", "Revoke a key at once.");
  keys_flags.add_to(keys_revoke, false);
  keys_revoke->add_option("id", keys_command.key_id, "The key id (key_...)")->required();

  parley::app::CopyDataCommand copy_command;
  auto* copy_data = app.add_subcommand(
      "copy-data", "Copy every row from one database to another (e.g. SQLite to PostgreSQL).");
  copy_data->add_option("--from", copy_command.from, "Source database URL")->required();
  copy_data->add_option("--to", copy_command.to, "Destination database URL (empty)")->required();
  copy_data->add_option("--batch", copy_command.batch_rows, "Rows per transaction")
      ->check(CLI::Range(1, 100000));

  std::string backup_to, restore_from;
  auto* backup = app.add_subcommand(
      "backup", "Copy the SQLite database, consistently, while the server runs.");
  backup_flags.add_to(backup, false);
  backup->add_option("--to", backup_to, "The backup file to write")->required();
  auto* restore = app.add_subcommand(
      "restore", "Put a backup in place of the SQLite database (server stopped).");
  restore_flags.add_to(restore, false);
  restore->add_option("--from", restore_from, "The backup file to read")->required();

  auto* version = app.add_subcommand("version", "Print the version.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (version->parsed()) {
    std::cout << version_line() << "\n";
    return 0;
  }

  if (reference->parsed()) {
    const auto& schema = parley::app::settings_schema();
    std::cout << (markdown ? parley::config::reference_markdown(schema)
                           : parley::config::reference_text(schema));
    return 0;
  }

  if (check->parsed()) {
    Loaded loaded = check_flags.load();
    if (!loaded.ok()) {
      print_problems(loaded);
      return kConfigErrorExit;
    }
    if (as_json) {
      std::cout << loaded.settings.to_json().dump(2, ' ', false,
                                                  nlohmann::json::error_handler_t::replace)
                << "\n";
    } else {
      std::cout << loaded.settings.to_yaml();
    }
    std::fprintf(stderr, "configuration is valid\n");
    return 0;
  }

  if (keys->parsed()) {
    keys_command.action = keys_create->parsed() ? "create"
                          : keys_list->parsed() ? "list"
                                                : "revoke";
    Loaded loaded = keys_flags.load();
    if (!loaded.ok()) {
      print_problems(loaded);
      return kConfigErrorExit;
    }
    return parley::app::run_keys_command(loaded.settings, keys_command);
  }

  if (copy_data->parsed()) return parley::app::run_copy_data_command(copy_command);

  for (auto [command, flags] :
       {std::pair{backup, &backup_flags}, std::pair{restore, &restore_flags}}) {
    if (!command->parsed()) continue;
    Loaded loaded = flags->load();
    if (!loaded.ok()) {
      print_problems(loaded);
      return kConfigErrorExit;
    }
    return command == backup ? parley::app::run_backup_command(loaded.settings, backup_to)
                             : parley::app::run_restore_command(loaded.settings, restore_from);
  }

  if (migrate->parsed()) {
    Loaded loaded = migrate_flags.load();
    if (!loaded.ok()) {
      print_problems(loaded);
      return kConfigErrorExit;
    }
    auto report = parley::store::migrate(loaded.settings.get<parley::store::StorageSettings>());
    if (!report) {
      std::fprintf(stderr, "parley: migrate failed: %s\n", report.error().message.c_str());
      return 1;
    }
    if (report->applied.empty()) {
      std::cout << report->where << ": schema is up to date (version " << report->to_version
                << ")\n";
    } else {
      std::cout << report->where << ": schema version " << report->from_version << " -> "
                << report->to_version << "\n";
      for (const auto& m : report->applied) std::cout << "  applied " << m << "\n";
    }
    return 0;
  }

  // serve or worker. Phase: configuration.
  Loaded loaded = worker->parsed() ? worker_flags.load() : serve_flags.load();
  parley::log::init(parley::log::Level::kInfo);
  if (!loaded.ok()) {
    print_problems(loaded);
    parley::app::startup_failure(
        "configuration",
        std::to_string(loaded.problems.size()) + " problem(s) in the configuration, listed above");
    return kConfigErrorExit;
  }
  parley::log::set_secrets(loaded.settings.secret_values());
  parley::log::set_level(
      parley::log::parse_level(loaded.settings.get<parley::log::LogSettings>().level));
  if (worker->parsed()) return parley::app::run_worker(loaded.settings, process_started);
  return parley::app::serve(loaded.settings, process_started, serve_options);
}
