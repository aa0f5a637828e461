// The audit-log writer: bounded queue -> batched COPY on its own thread -> spool on failure.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "db/audit_row.h"

namespace hookguard::db {

struct AuditWriterOptions {
  std::string dsn;
  std::size_t batch_size = 1000;
  int flush_interval_ms = 100;
  std::size_t queue_capacity = 100000;
  std::string spool_dir = "var/spool";
  int stall_spool_after_ms = 2000;  // a writer stuck this long makes producers spool directly
  std::uint64_t spool_max_bytes = std::uint64_t{1} << 30;  // beyond it rows are dropped, loudly
  // The longest a row enqueued with a callback waits for the writer thread: past it, the rows
  // it waits for are spooled by a watchdog thread (the writer is stuck on PostgreSQL).
  int durable_wait_max_ms = 1000;
};

/// Counters, readable from any thread (exported in /metrics).
struct AuditCounters {
  std::atomic<std::uint64_t> enqueued{0};
  std::atomic<std::uint64_t> written{0};      // rows inserted (incl. replayed; not duplicates)
  std::atomic<std::uint64_t> spooled{0};      // rows that had to go to the spool file
  std::atomic<std::uint64_t> replayed{0};     // spooled rows later committed
  std::atomic<std::uint64_t> quarantined{0};  // rows PostgreSQL rejected, kept in a side file
  std::atomic<std::uint64_t> flush_errors{0};
  std::atomic<std::uint64_t> dropped{0};  // spool full or unwritable: lost, reported on stderr
  std::atomic<std::uint64_t> commits{0};  // COPY transactions committed (one per batch or chunk)
  // Rows enqueued with a callback: callbacks run, the total time from enqueue to callback, and
  // how many of those rows the watchdog spooled because the writer thread was stuck.
  std::atomic<std::uint64_t> durable_waits{0};
  std::atomic<std::uint64_t> durable_wait_us{0};
  std::atomic<std::uint64_t> durable_rescued{0};
};

/// Makes every string of `row` valid UTF-8 without NUL (bad bytes become U+FFFD) and cuts
/// long fields at a character boundary; enqueue() applies it to every row.
void sanitize_audit_row(AuditRow& row);
/// `text` as valid UTF-8 without NUL, at most `max_bytes` bytes long.
std::string sanitize_utf8(std::string_view text, std::size_t max_bytes);
/// `dsn` (URI or key=value form) with client timeouts, keepalives and UTF-8 added where the
/// caller did not set them: libpq has no other way to bound a call to a dead server.
std::string audit_dsn_with_defaults(const std::string& dsn);

/// Never blocks a request on PostgreSQL. enqueue() is thread-safe and O(1).
class AuditWriter {
 public:
  /// Runs once the row it came with is durable; see enqueue(row, durable).
  using Durable = std::function<void()>;

  explicit AuditWriter(AuditWriterOptions options);
  ~AuditWriter();  // stop()s
  AuditWriter(const AuditWriter&) = delete;
  AuditWriter& operator=(const AuditWriter&) = delete;

  /// Starts the writer thread (replays any spool left by an earlier run first).
  void start();
  /// Queues one row; when the queue is full or the writer is stalled, the row goes to the spool.
  void enqueue(AuditRow row);
  /// Queues one row and runs `durable` exactly once, as soon as the row is committed in
  /// PostgreSQL or fdatasync'd in the spool (or counted as dropped, when even the spool failed:
  /// the caller is never left waiting). A queued row with a callback is written at once, with
  /// whatever else queued up meanwhile (group commit), instead of waiting for a full batch or
  /// flush_interval_ms. `durable` runs on the writer thread (or the caller's, when the row is
  /// spooled directly), so it must be quick and must not throw.
  void enqueue(AuditRow row, Durable durable);
  /// Drains the queue to PostgreSQL (or the spool) and joins the thread. Idempotent.
  void stop();

  std::size_t queue_depth() const;
  const AuditCounters& counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hookguard::db
