// The audit writer alone: how many webhook_event_log rows a second db::AuditWriter puts into
// PostgreSQL through batched COPY, with no gateway in front of it.
//
// It creates a fresh database (hgbench_*) on HOOKGUARD_POSTGRES_DSN's server, migrates it,
// starts one AuditWriter, enqueues N realistic rows (one per request, as the gateway builds
// them) from --producers threads, and waits until the writer reports every row written. The
// rate is N over that time; the queue holds all N rows, so nothing is spooled and the number
// is PostgreSQL's intake through the writer, not the producers' speed. It then checks that the
// table holds exactly N rows and drops the database.
//
// usage: hookguard_audit_writer_bench [--rows N] [--batch-size B] [--flush-interval-ms F]
//                                     [--producers P] [--min-rows-per-sec R] [--keep]
// env:   HOOKGUARD_POSTGRES_DSN (source var/local/env from deploy/local/start-services.sh)
// Prints one CSV line: rows,batch_size,producers,seconds,rows_per_sec,produce_ns_per_row,spooled
// Exit code 1 when a row is missing or spooled, or the rate is below --min-rows-per-sec.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <pqxx/pqxx>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "db/audit_row.h"
#include "db/audit_writer.h"
#include "db/migrator.h"
#include "policy/encoding.h"

namespace {

using namespace hookguard;
using Clock = std::chrono::steady_clock;

struct Args {
  std::size_t rows = 200000;
  std::size_t batch_size = 5000;
  int flush_interval_ms = 100;
  int producers = 1;
  double min_rows_per_sec = 0;
  bool keep = false;
};

bool parse_args(int argc, char** argv, Args& args) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (arg == "--keep") {
      args.keep = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") return false;
    if ((v = value()) == nullptr) {
      std::fprintf(stderr, "%s needs a value\n", arg.c_str());
      return false;
    }
    if (arg == "--rows") {
      args.rows = std::strtoull(v, nullptr, 10);
    } else if (arg == "--batch-size") {
      args.batch_size = std::strtoull(v, nullptr, 10);
    } else if (arg == "--flush-interval-ms") {
      args.flush_interval_ms = std::atoi(v);
    } else if (arg == "--producers") {
      args.producers = std::max(1, std::atoi(v));
    } else if (arg == "--min-rows-per-sec") {
      args.min_rows_per_sec = std::strtod(v, nullptr);
    } else {
      std::fprintf(stderr, "unknown argument: %s\n", arg.c_str());
      return false;
    }
  }
  return args.rows > 0 && args.batch_size > 0 && args.flush_interval_ms > 0;
}

// Replaces the database of a libpq DSN, URI ("postgresql://u@h:p/db?x=y") or keyword form.
std::string with_database(const std::string& dsn, const std::string& database) {
  const auto scheme = dsn.find("://");
  if (scheme == std::string::npos) return dsn + " dbname=" + database;  // the last one wins
  const auto path = dsn.find('/', scheme + 3);
  const auto query = dsn.find('?', scheme + 3);
  const std::string base = dsn.substr(0, std::min(path, query));
  const std::string params = query == std::string::npos ? "" : dsn.substr(query);
  return base + "/" + database + params;
}

// A row as the gateway writes it for a forwarded, signed GitHub delivery, request id included:
// a UUID v7 of the row's time, as Ingress makes it (random v4 ids, scattered over the unique
// index, cost 10-30 % of the rate here).
db::AuditRow make_row() {
  db::AuditRow row;
  row.created_unix_us = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  row.trigger_id = 1;
  row.webhook_key = "wh_0123456789abcdefghijABCDEFGHIJ01";
  row.request_id = policy::generate_uuid_v7(row.created_unix_us / 1000);
  row.event_type = "push";
  row.source_ip = "127.0.0.1";
  row.peer_ip = "127.0.0.1";
  row.user_agent = "GitHub-Hookshot/bench";
  row.method = "POST";
  row.payload_size_bytes = 1024;
  row.outcome = "forwarded";
  row.status_code = 200;
  row.hmac_verified = true;
  row.ip_allowed = true;
  row.upstream_status = 200;
  row.upstream_ms = 1;
  row.processing_time_ms = 1;
  return row;
}

void drop_database(const std::string& admin_dsn, const std::string& name) {
  try {
    pqxx::connection conn(admin_dsn);
    pqxx::nontransaction tx(conn);
    tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name) + " WITH (FORCE)");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "audit bench: could not drop %s: %s\n", name.c_str(), e.what());
  }
}

int run(const Args& args, const std::string& dsn, const std::string& spool_dir) {
  if (auto report = db::migrate(dsn); !report) {
    std::fprintf(stderr, "audit bench: migrate: %s\n", report.error().message.c_str());
    return 1;
  }

  db::AuditWriterOptions options;
  options.dsn = dsn;
  options.batch_size = args.batch_size;
  options.flush_interval_ms = args.flush_interval_ms;
  options.queue_capacity = args.rows + 1;  // never spool: measure PostgreSQL, not the disk
  options.spool_dir = spool_dir;
  db::AuditWriter writer(options);
  writer.start();

  std::atomic<std::int64_t> produce_ns{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> producers;
  for (int p = 0; p < args.producers; ++p) {
    producers.emplace_back([&, p] {
      const auto start = Clock::now();
      for (std::size_t i = static_cast<std::size_t>(p); i < args.rows;
           i += static_cast<std::size_t>(args.producers)) {
        writer.enqueue(make_row());
      }
      produce_ns +=
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
    });
  }
  for (auto& t : producers) t.join();
  // Poll, not stop(): stop() would flush the tail without waiting for the flush interval,
  // which a running gateway never does.
  const auto& c = writer.counters();
  const auto deadline = t0 + std::chrono::seconds(300);
  while (c.written.load() + c.spooled.load() + c.dropped.load() < args.rows &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  writer.stop();

  std::uint64_t in_table = 0;
  {
    pqxx::connection conn(dsn);
    pqxx::nontransaction tx(conn);
    in_table = tx.exec1("SELECT count(*) FROM webhook_event_log")[0].as<std::uint64_t>();
  }
  const double rate = static_cast<double>(args.rows) / seconds;
  const double ns_per_row = static_cast<double>(produce_ns.load()) / static_cast<double>(args.rows);
  std::printf("rows,batch_size,producers,seconds,rows_per_sec,produce_ns_per_row,spooled\n");
  std::printf("%zu,%zu,%d,%.3f,%.0f,%.0f,%llu\n", args.rows, args.batch_size, args.producers,
              seconds, rate, ns_per_row, static_cast<unsigned long long>(c.spooled.load()));
  int rc = 0;
  if (in_table != args.rows) {
    std::fprintf(stderr, "audit bench: FAIL: %llu rows in webhook_event_log, expected %zu\n",
                 static_cast<unsigned long long>(in_table), args.rows);
    rc = 1;
  }
  if (c.spooled.load() != 0 || c.dropped.load() != 0 || c.quarantined.load() != 0) {
    std::fprintf(stderr, "audit bench: FAIL: spooled %llu, dropped %llu, quarantined %llu\n",
                 static_cast<unsigned long long>(c.spooled.load()),
                 static_cast<unsigned long long>(c.dropped.load()),
                 static_cast<unsigned long long>(c.quarantined.load()));
    rc = 1;
  }
  if (args.min_rows_per_sec > 0 && rate < args.min_rows_per_sec) {
    std::fprintf(stderr, "audit bench: FAIL: %.0f rows/s is below --min-rows-per-sec %.0f\n", rate,
                 args.min_rows_per_sec);
    rc = 1;
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!parse_args(argc, argv, args)) {
    std::fprintf(stderr,
                 "usage: %s [--rows N] [--batch-size B] [--flush-interval-ms F] [--producers P]"
                 " [--min-rows-per-sec R] [--keep]\n",
                 argv[0]);
    return 2;
  }
  const char* env_dsn = std::getenv("HOOKGUARD_POSTGRES_DSN");
  if (env_dsn == nullptr || *env_dsn == '\0') {
    std::fprintf(stderr,
                 "HOOKGUARD_POSTGRES_DSN is not set: bash deploy/local/start-services.sh && "
                 "source var/local/env\n");
    return 2;
  }
  char name[64];
  std::snprintf(name, sizeof name, "hgbench_%d_%08x", static_cast<int>(::getpid()),
                std::random_device{}());
  const std::string admin_dsn = with_database(env_dsn, "postgres");
  const std::string dsn = with_database(env_dsn, name);
  const auto spool_dir = std::filesystem::temp_directory_path() / (std::string(name) + "_spool");

  int rc = 1;
  try {
    {
      pqxx::connection conn(admin_dsn);
      pqxx::nontransaction tx(conn);
      tx.exec("CREATE DATABASE " + tx.quote_name(name));
    }
    rc = run(args, dsn, spool_dir.string());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "audit bench: %s\n", e.what());
    rc = 1;
  }
  if (args.keep) {
    std::fprintf(stderr, "audit bench: kept database %s\n", name);
  } else {
    drop_database(admin_dsn, name);
  }
  std::error_code ignored;
  std::filesystem::remove_all(spool_dir, ignored);
  return rc;
}
