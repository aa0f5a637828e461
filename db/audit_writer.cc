#include "db/audit_writer.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "db/pg_socket_guard.h"
#include "db/spool.h"

namespace hookguard::db {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kWebhookKeyMax = 128;
constexpr std::size_t kIdMax = 256;  // delivery_id, event_type
constexpr std::size_t kUserAgentMax = 512;
constexpr std::size_t kErrorMessageMax = 1024;
constexpr std::size_t kShortFieldMax = 64;  // request_id, ips, method, outcome
constexpr int kBackoffMinMs = 100;
constexpr int kBackoffMaxMs = 5000;
// How often the watchdog looks for a sender that waits too long when none is waiting yet.
constexpr std::int64_t kWatchdogTickUs = 100000;
// Rows that, once queued, go into the open COPY at once rather than at the flush (run()).
constexpr std::size_t kStreamChunkRows = 256;

// Must match webhook_event_log (db/migrations/0001_*.sql) minus the generated id.
constexpr const char* kColumns =
    "created, trigger_id, webhook_key, request_id, delivery_id, event_type, source_ip, peer_ip, "
    "user_agent, method, payload_size_bytes, outcome, status_code, error_message, hmac_verified, "
    "rate_limited, ip_allowed, monitor, upstream_status, upstream_ms, processing_time_ms";
const std::vector<std::string> kColumnList = {
    "created",           "trigger_id",    "webhook_key",        "request_id",
    "delivery_id",       "event_type",    "source_ip",          "peer_ip",
    "user_agent",        "method",        "payload_size_bytes", "outcome",
    "status_code",       "error_message", "hmac_verified",      "rate_limited",
    "ip_allowed",        "monitor",       "upstream_status",    "upstream_ms",
    "processing_time_ms"};

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
      .count();
}

// COPY text input for timestamptz; explicit +00 so the session TimeZone cannot shift it.
std::string format_timestamp(std::int64_t unix_us) {
  std::int64_t secs = unix_us / 1000000;
  std::int64_t micros = unix_us % 1000000;
  if (micros < 0) {
    micros += 1000000;
    secs -= 1;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(micros));
  return buf;
}

// One row of the COPY, columns in kColumnList's order.
void write_row(pqxx::stream_to& stream, const AuditRow& r) {
  stream << std::make_tuple(format_timestamp(r.created_unix_us), r.trigger_id, r.webhook_key,
                            r.request_id, r.delivery_id, r.event_type, r.source_ip, r.peer_ip,
                            r.user_agent, r.method, r.payload_size_bytes, r.outcome, r.status_code,
                            r.error_message, r.hmac_verified, r.rate_limited, r.ip_allowed,
                            r.monitor, r.upstream_status, r.upstream_ms, r.processing_time_ms);
}

// COPYs into `table` what `write` writes, then ends the COPY. When `write` throws, the COPY is
// still ended (stream_to's destructor swallows errors), so its error is what the caller sees.
template <class Write>
void copy_into(pqxx::work& tx, const char* table, Write&& write) {
  pqxx::stream_to stream(tx, table, kColumnList);
  try {
    write(stream);
  } catch (...) {
    try {
      stream.complete();
    } catch (...) {
    }
    throw;
  }
  stream.complete();
}

// Almost every field is plain ASCII within its bound: one scan says so and the value stays
// where it is, without the copy sanitize_utf8 makes (this runs once per request).
void sanitize_field(std::string& value, std::size_t max_bytes) {
  const bool plain =
      value.size() <= max_bytes && std::all_of(value.begin(), value.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u >= 0x01 && u <= 0x7F;
      });
  if (!plain) value = sanitize_utf8(value, max_bytes);
}

void sanitize_optional(std::optional<std::string>& value, std::size_t max_bytes) {
  if (value) sanitize_field(*value, max_bytes);
}

enum class WriteStatus { kOk, kDataError, kUnavailable };

struct WriteResult {
  WriteStatus status = WriteStatus::kOk;
  std::string message;
  std::uint64_t inserted = 0;
  bool duplicate = false;  // unique_violation: the rows (or some) are already stored
};

}  // namespace

std::string sanitize_utf8(std::string_view text, std::size_t max_bytes) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    std::size_t len = 0;
    // RFC 3629 table 3-7: reject overlong forms, surrogates and code points past U+10FFFF.
    if (c >= 0x01 && c <= 0x7F) {
      len = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = (i + 1 < n && (s[i + 1] & 0xC0) == 0x80) ? 2 : 0;
    } else if (c >= 0xE0 && c <= 0xEF && i + 2 < n) {
      unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
      unsigned char hi = c == 0xED ? 0x9F : 0xBF;
      len = (s[i + 1] >= lo && s[i + 1] <= hi && (s[i + 2] & 0xC0) == 0x80) ? 3 : 0;
    } else if (c >= 0xF0 && c <= 0xF4 && i + 3 < n) {
      unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
      unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
      len = (s[i + 1] >= lo && s[i + 1] <= hi && (s[i + 2] & 0xC0) == 0x80 &&
             (s[i + 3] & 0xC0) == 0x80)
                ? 4
                : 0;
    }
    std::string_view piece = len > 0 ? text.substr(i, len) : kReplacement;
    if (out.size() + piece.size() > max_bytes) break;
    out.append(piece);
    i += len > 0 ? len : 1;
  }
  return out;
}

void sanitize_audit_row(AuditRow& row) {
  sanitize_field(row.webhook_key, kWebhookKeyMax);
  sanitize_field(row.request_id, kShortFieldMax);
  sanitize_optional(row.delivery_id, kIdMax);
  sanitize_optional(row.event_type, kIdMax);
  sanitize_optional(row.source_ip, kShortFieldMax);
  sanitize_optional(row.peer_ip, kShortFieldMax);
  sanitize_optional(row.user_agent, kUserAgentMax);
  sanitize_field(row.method, kShortFieldMax);
  sanitize_field(row.outcome, kShortFieldMax);
  sanitize_optional(row.error_message, kErrorMessageMax);
}

std::string audit_dsn_with_defaults(const std::string& dsn) {
  return dsn_with_defaults(dsn, "hookguard-audit");
}

struct AuditWriter::Impl {
  explicit Impl(AuditWriterOptions o) : options(std::move(o)) {
    dsn = audit_dsn_with_defaults(options.dsn);
    if (options.batch_size == 0) options.batch_size = 1;
    options.durable_wait_max_ms = std::max(options.durable_wait_max_ms, 1);
    auto opened = Spool::open(SpoolOptions{options.spool_dir, options.spool_max_bytes});
    if (opened) {
      spool = std::move(*opened);
    } else {
      std::fprintf(stderr,
                   "hookguard: audit writer: NO SPOOL, rows that cannot reach "
                   "PostgreSQL will be lost: %s\n",
                   opened.error().message.c_str());
    }
  }

  // Someone waiting for a row to be durable: the callback, and since when (steady clock).
  struct Waiter {
    Durable durable;  // empty: nobody waits for this row
    std::int64_t since_us = 0;
  };
  struct Entry {
    AuditRow row;
    Waiter waiter;
  };

  AuditWriterOptions options;
  std::string dsn;
  AuditCounters counters;
  std::unique_ptr<Spool> spool;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<Entry> queue;
  std::size_t queued_waiters = 0;  // entries of `queue` with a callback
  bool stopping = false;
  bool running = false;  // the writer thread owns the queue
  std::thread thread;
  std::mutex stop_mu;  // serialises stop() callers

  // The batch the writer thread is storing while senders wait for it. The watchdog takes it
  // over (spools it, runs the callbacks) when the writer is stuck; all guarded by `mu`.
  std::shared_ptr<const std::vector<AuditRow>> inflight_rows;
  std::vector<Waiter> inflight_waiters;
  bool inflight_rescued = false;
  bool rescuing = false;  // the watchdog is spooling: the writer waits, so order is kept
  std::thread watchdog;   // started with the first row that has a callback
  bool watchdog_stopping = false;
  std::condition_variable watchdog_cv;

  // Set while the writer waits on PostgreSQL; producers spool when it stays set too long.
  std::atomic<std::int64_t> busy_since_ms{0};

  // The writer's PostgreSQL socket, so that stop() can cut a call that hangs
  // (wait_for_writer_exit). `tracked_socket` is the writer thread's, and stop()'s once the
  // writer has left.
  PgSocketGuard socket_guard;
  PgSocketGuard::Tracked tracked_socket;

  // Writer-thread state only.
  std::unique_ptr<pqxx::connection> conn;
  Clock::time_point next_connect{};
  int backoff_ms = kBackoffMinMs;
  bool reported_down = false;

  bool spool_rows(const std::vector<AuditRow>& rows) {
    if (rows.empty()) return true;
    if (!spool) {
      counters.dropped += rows.size();
      std::fprintf(stderr, "hookguard: AUDIT ROWS LOST: %zu rows, no spool available\n",
                   rows.size());
      return false;
    }
    auto stored = spool->append(rows);
    if (!stored) {
      counters.dropped += rows.size();
      std::fprintf(stderr, "hookguard: AUDIT ROWS LOST: %zu rows, spool append failed: %s\n",
                   rows.size(), stored.error().message.c_str());
      return false;
    }
    counters.spooled += *stored;
    counters.dropped += rows.size() - *stored;
    return true;
  }

  // Moves up to `n` entries out of the queue (mu held): rows to `rows`, callbacks to `waiters`.
  void take_locked(std::size_t n, std::vector<AuditRow>& rows, std::vector<Waiter>& waiters) {
    n = std::min(n, queue.size());
    rows.reserve(rows.size() + n);
    for (std::size_t i = 0; i < n; ++i) {
      Entry& entry = queue.front();
      rows.push_back(std::move(entry.row));
      if (entry.waiter.durable) {
        waiters.push_back(std::move(entry.waiter));
        --queued_waiters;
      }
      queue.pop_front();
    }
  }

  // Runs once the rows of `waiters` are committed, spooled, or counted as dropped.
  void run_waiters(std::vector<Waiter>& waiters) {
    if (waiters.empty()) return;
    const std::int64_t now = now_us();
    std::uint64_t waited_us = 0;
    for (Waiter& w : waiters) {
      waited_us += static_cast<std::uint64_t>(std::max<std::int64_t>(now - w.since_us, 0));
      try {
        w.durable();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "hookguard: audit writer: a row's callback failed: %s\n", e.what());
      } catch (...) {
        std::fprintf(stderr, "hookguard: audit writer: a row's callback failed\n");
      }
    }
    counters.durable_waits += waiters.size();
    counters.durable_wait_us += waited_us;
    waiters.clear();
  }

  bool senders_waiting() const {
    std::lock_guard<std::mutex> lock(mu);
    return queued_waiters > 0;
  }

  void remember_socket() {
    tracked_socket = conn ? socket_guard.track(*conn) : PgSocketGuard::Tracked();
  }

  void forget_socket() { tracked_socket = PgSocketGuard::Tracked(); }

  // Waits until the writer thread has drained and exits. A hung server (stopped process,
  // paused VM) still acknowledges TCP, so neither keepalives nor tcp_user_timeout ever end a
  // call that waits for its answer, and shutdown would wait forever: once a call has hung for
  // stall_spool_after_ms, its socket is shut down. The call then fails like any lost
  // connection and its rows go to the spool; should the server still commit them, the replay
  // skips them (idempotent on request_id).
  void wait_for_writer_exit() {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!running) return;
      }
      const std::int64_t busy_since = busy_since_ms.load();
      if (busy_since != 0 && now_ms() - busy_since > options.stall_spool_after_ms) {
        socket_guard.cut();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  void mark_unavailable(const std::string& why) {
    forget_socket();
    conn.reset();
    ++counters.flush_errors;
    next_connect = Clock::now() + std::chrono::milliseconds(backoff_ms);
    backoff_ms = std::min(backoff_ms * 2, kBackoffMaxMs);
    if (!reported_down) {
      reported_down = true;
      std::fprintf(stderr, "hookguard: audit writer: PostgreSQL unavailable, spooling to %s: %s\n",
                   options.spool_dir.c_str(), why.c_str());
    }
  }

  // Rebuilds the connection after a failure rather than trusting libpqxx 6's deprecated
  // reactivation, which loses temp tables and can fail again later.
  bool ensure_connection() {
    if (conn) return true;
    if (Clock::now() < next_connect) return false;
    busy_since_ms = now_ms();
    try {
      conn = std::make_unique<pqxx::connection>(dsn);
    } catch (const std::exception& e) {
      busy_since_ms = 0;
      mark_unavailable(e.what());
      return false;
    }
    remember_socket();
    busy_since_ms = 0;
    backoff_ms = kBackoffMinMs;
    if (reported_down) {
      reported_down = false;
      std::fprintf(stderr, "hookguard: audit writer: PostgreSQL is back\n");
    }
    return true;
  }

  // Idempotent form (replays, and any batch that hit a duplicate): one transaction, COPY into a
  // temp table, then INSERT ... ON CONFLICT DO NOTHING, so a row already stored is skipped.
  // Fresh batches COPY straight into the table, which costs the server about a third less; a
  // duplicate there fails the COPY with 23505 and the caller retries the idempotent form.
  WriteResult copy_rows(const std::vector<AuditRow>& rows, std::size_t lo, std::size_t hi,
                        bool idempotent) {
    WriteResult result;
    busy_since_ms = now_ms();
    try {
      pqxx::work tx(*conn, "hookguard_audit");
      if (idempotent) {
        // CREATE ... AS SELECT ... WITH NO DATA, not LIKE: it takes exactly our columns and no
        // NOT NULL on an id column that COPY never fills.
        tx.exec0(std::string("CREATE TEMP TABLE hookguard_audit_batch ON COMMIT DROP AS SELECT ") +
                 kColumns + " FROM webhook_event_log WITH NO DATA");
      }
      copy_into(tx, idempotent ? "hookguard_audit_batch" : "webhook_event_log",
                [&](pqxx::stream_to& stream) {
                  for (std::size_t i = lo; i < hi; ++i) write_row(stream, rows[i]);
                });
      if (idempotent) {
        pqxx::result inserted = tx.exec0(
            std::string("INSERT INTO webhook_event_log (") + kColumns + ") SELECT " + kColumns +
            " FROM hookguard_audit_batch ON CONFLICT (request_id, created) DO NOTHING");
        result.inserted = static_cast<std::uint64_t>(inserted.affected_rows());
      } else {
        result.inserted = hi - lo;
      }
      tx.commit();
      ++counters.commits;
    } catch (const pqxx::broken_connection& e) {
      result = {WriteStatus::kUnavailable, e.what(), 0};
    } catch (const pqxx::in_doubt_error& e) {
      result = {WriteStatus::kUnavailable, e.what(), 0};
    } catch (const pqxx::sql_error& e) {
      const std::string& state = e.sqlstate();
      // Class 22 (data exception) and 23 (integrity violation) belong to a row; anything else
      // (missing table, shutdown, out of disk, ...) is the server's and must not quarantine.
      bool row_fault = state.rfind("22", 0) == 0 || state.rfind("23", 0) == 0;
      bool open = conn && conn->is_open();
      result = {row_fault && open ? WriteStatus::kDataError : WriteStatus::kUnavailable, e.what(),
                0, state == "23505"};
    } catch (const std::exception& e) {
      result = {WriteStatus::kUnavailable, e.what(), 0};
    }
    busy_since_ms = 0;
    return result;
  }

  // Bisects a batch that PostgreSQL refused until the rows at fault are single rows.
  WriteStatus write_range(const std::vector<AuditRow>& rows, std::size_t lo, std::size_t hi,
                          bool idempotent, std::vector<std::pair<AuditRow, std::string>>& poison,
                          std::string& error) {
    if (lo >= hi) return WriteStatus::kOk;
    WriteResult r = copy_rows(rows, lo, hi, idempotent);
    if (r.status == WriteStatus::kDataError && r.duplicate && !idempotent) {
      idempotent = true;
      r = copy_rows(rows, lo, hi, idempotent);
    }
    if (r.status == WriteStatus::kOk) {
      counters.written += r.inserted;
      return WriteStatus::kOk;
    }
    if (r.status == WriteStatus::kUnavailable) {
      error = r.message;
      return r.status;
    }
    if (hi - lo == 1) {
      poison.emplace_back(rows[lo], r.message);
      return WriteStatus::kOk;
    }
    std::size_t mid = lo + (hi - lo) / 2;
    WriteStatus left = write_range(rows, lo, mid, idempotent, poison, error);
    if (left != WriteStatus::kOk) return left;
    return write_range(rows, mid, hi, idempotent, poison, error);
  }

  // Waits for the next chunk of the open COPY (stream_batch) and takes it. False when the
  // transaction ends now: the batch is full, a sender waits for a row (that row goes in a
  // transaction of its own, at once: run()), or the flush time or the stop has come, in which
  // case the rows still queued are taken first.
  bool take_next_chunk(std::vector<AuditRow>& batch, Clock::time_point flush_at) {
    if (batch.size() >= options.batch_size) return false;
    const std::size_t chunk = std::min(kStreamChunkRows, options.batch_size - batch.size());
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_until(lock, flush_at, [&] {
      return stopping || rescuing || queued_waiters > 0 || queue.size() >= chunk;
    });
    if (rescuing || queued_waiters > 0) return false;
    std::vector<Waiter> none;  // no queued row has a waiter (checked above)
    take_locked(options.batch_size - batch.size(), batch, none);
    return !stopping && Clock::now() < flush_at;
  }

  // Stores a fresh batch (no sender waits for it) in one COPY that stays open until `flush_at`:
  // rows queued meanwhile join it a chunk at a time, so PostgreSQL takes them as they come
  // rather than all at the flush, where a few thousand rows held a core for ~8 ms and every
  // request behind it waited (README, audit.flush_interval_ms). At `flush_at` the rows still
  // queued join too. It ends early when the batch is full, a sender waits for a row (that row
  // goes in the next transaction, at once), or the writer stops. Any failure leaves nothing
  // committed: the whole batch then takes store()'s path (retries, bisection, the idempotent
  // form). false as store() (the caller spools the batch).
  bool stream_batch(std::vector<AuditRow>& batch, Clock::time_point flush_at) {
    if (!ensure_connection()) return false;
    std::size_t written = 0;
    try {
      pqxx::work tx(*conn, "hookguard_audit");
      copy_into(tx, "webhook_event_log", [&](pqxx::stream_to& stream) {
        for (bool more = true;;) {
          busy_since_ms = now_ms();
          for (; written < batch.size(); ++written) write_row(stream, batch[written]);
          if (!more) break;  // busy_since_ms stays set through the COPY's end and the commit
          busy_since_ms = 0;
          more = take_next_chunk(batch, flush_at);
        }
      });
      tx.commit();
    } catch (const std::exception&) {
      busy_since_ms = 0;
      return store(batch, /*idempotent=*/false);
    }
    busy_since_ms = 0;
    ++counters.commits;
    counters.written += batch.size();
    return true;
  }

  // Stores `rows` in PostgreSQL; false when PostgreSQL is unavailable (nothing is lost: the
  // caller still holds the rows, and rows already committed are skipped on replay).
  bool store(const std::vector<AuditRow>& rows, bool idempotent) {
    if (!ensure_connection()) return false;
    std::vector<std::pair<AuditRow, std::string>> poison;
    std::string error;
    if (write_range(rows, 0, rows.size(), idempotent, poison, error) != WriteStatus::kOk) {
      mark_unavailable(error);
      return false;
    }
    if (!poison.empty()) quarantine(poison);
    return true;
  }

  void quarantine(const std::vector<std::pair<AuditRow, std::string>>& poison) {
    counters.quarantined += poison.size();
    bool kept = false;
    if (spool) {
      auto r = spool->quarantine(poison);
      kept = r.has_value();
      if (!r) std::fprintf(stderr, "hookguard: audit writer: %s\n", r.error().message.c_str());
    }
    std::fprintf(stderr,
                 "hookguard: audit writer: PostgreSQL rejected %zu row(s), %s %s/quarantine.log; "
                 "first: request_id=%s: %s\n",
                 poison.size(), kept ? "kept in" : "COULD NOT KEEP them in",
                 options.spool_dir.c_str(), poison.front().first.request_id.c_str(),
                 poison.front().second.c_str());
  }

  // Replays one chunk of the spool; false when there was nothing to do or PostgreSQL is down.
  bool replay_one_chunk() {
    if (!spool || spool->empty() || !ensure_connection()) return false;
    auto chunk = spool->peek(options.batch_size);
    if (!chunk) {
      std::fprintf(stderr, "hookguard: audit writer: spool replay: %s\n",
                   chunk.error().message.c_str());
      return false;
    }
    if (chunk->rows.empty()) return false;
    // A spool written by an older build may predate a sanitising rule.
    for (AuditRow& row : chunk->rows) sanitize_audit_row(row);
    if (!store(chunk->rows, /*idempotent=*/true)) return false;
    if (auto acked = spool->ack(*chunk); !acked) {
      std::fprintf(stderr, "hookguard: audit writer: spool ack: %s\n",
                   acked.error().message.c_str());
      return false;
    }
    counters.replayed += chunk->rows.size();
    return true;
  }

  void run() {
    auto next_flush = Clock::now() + std::chrono::milliseconds(options.flush_interval_ms);
    for (;;) {
      bool stop_now = false;
      {
        std::lock_guard<std::mutex> lock(mu);
        stop_now = stopping;
      }
      // Spooled rows are older than anything queued: they go first, so order is kept. Senders
      // waiting for their rows are served between two chunks, not after the whole backlog.
      if (!stop_now && replay_one_chunk() && !senders_waiting()) continue;

      auto batch = std::make_shared<std::vector<AuditRow>>();
      std::vector<Waiter> waiters;
      bool streaming = false;
      {
        std::unique_lock<std::mutex> lock(mu);
        // A waiting sender is written at once, together with whatever queued up while the
        // previous transaction ran (group commit), rather than after flush_interval_ms.
        // A chunk of rows opens the next transaction before the flush (stream_batch).
        const std::size_t chunk = std::min(kStreamChunkRows, options.batch_size);
        cv.wait_until(lock, next_flush,
                      [&] { return stopping || queue.size() >= chunk || queued_waiters > 0; });
        // The watchdog is spooling rows older than these: let it finish, to keep the order.
        cv.wait(lock, [&] { return !rescuing; });
        streaming = !stopping && queued_waiters == 0 && queue.size() < options.batch_size &&
                    Clock::now() < next_flush;
        // Woken by the flush time or a waiting sender: the next flush is an interval away.
        if (!streaming && queue.size() < options.batch_size) {
          next_flush = Clock::now() + std::chrono::milliseconds(options.flush_interval_ms);
        }
        take_locked(options.batch_size, *batch, waiters);
        stop_now = stopping;
        if (stop_now && batch->empty()) {
          running = false;
          return;
        }
        if (!waiters.empty()) {
          inflight_rows = batch;
          inflight_waiters = std::move(waiters);
          waiters.clear();
        }
      }
      if (batch->empty()) continue;
      // While older rows wait in the spool, newer ones queue up behind them on disk.
      const bool stored =
          (!spool || spool->empty()) &&
          (streaming ? stream_batch(*batch, next_flush) : store(*batch, /*idempotent=*/false));
      // A streamed transaction ran until the flush time (unless it filled up): the next one's
      // is an interval after it ended.
      if (streaming && batch->size() < options.batch_size) {
        next_flush = Clock::now() + std::chrono::milliseconds(options.flush_interval_ms);
      }
      bool rescued = false;
      {
        std::lock_guard<std::mutex> lock(mu);
        waiters = std::move(inflight_waiters);
        inflight_waiters.clear();
        rescued = inflight_rescued;
        inflight_rows.reset();
        inflight_rescued = false;
      }
      if (!stored && !rescued) spool_rows(*batch);  // a rescued batch is in the spool already
      run_waiters(waiters);
    }
  }

  // The oldest row a sender waits for (mu held): in flight, else the first queued one.
  std::optional<std::int64_t> oldest_waiter_locked() const {
    if (!inflight_waiters.empty()) return inflight_waiters.front().since_us;
    if (queued_waiters == 0) return std::nullopt;
    for (const Entry& entry : queue) {
      if (entry.waiter.durable) return entry.waiter.since_us;
    }
    return std::nullopt;
  }

  // Bounds how long a sender waits for its row. Past durable_wait_max_ms the writer thread is
  // stuck on PostgreSQL (a hung server, a COMMIT waiting for a synchronous standby): the rows
  // waited for, in flight and queued, are spooled from here and their callbacks run. Whatever
  // the writer later makes of its batch, replay is idempotent on request_id.
  void watch() {
    const std::int64_t max_wait_us = std::int64_t{options.durable_wait_max_ms} * 1000;
    std::unique_lock<std::mutex> lock(mu);
    while (!watchdog_stopping) {
      const std::optional<std::int64_t> oldest = oldest_waiter_locked();
      const std::int64_t now = now_us();
      if (!oldest || now - *oldest < max_wait_us) {
        const std::int64_t sleep_us = oldest ? *oldest + max_wait_us - now : kWatchdogTickUs;
        watchdog_cv.wait_for(lock, std::chrono::microseconds(std::min(sleep_us, kWatchdogTickUs)));
        continue;
      }
      std::shared_ptr<const std::vector<AuditRow>> in_flight;
      if (inflight_rows && !inflight_rescued) {
        in_flight = inflight_rows;
        inflight_rescued = true;
      }
      std::vector<Waiter> waiters = std::move(inflight_waiters);
      inflight_waiters.clear();
      std::vector<AuditRow> queued;
      take_locked(queue.size(), queued, waiters);
      rescuing = true;
      lock.unlock();
      std::fprintf(stderr,
                   "hookguard: audit writer: stuck for over %d ms; spooling %zu row(s) that "
                   "senders wait for\n",
                   options.durable_wait_max_ms,
                   (in_flight ? in_flight->size() : 0) + queued.size());
      if (in_flight) spool_rows(*in_flight);
      spool_rows(queued);
      counters.durable_rescued += waiters.size();
      run_waiters(waiters);
      lock.lock();
      rescuing = false;
      cv.notify_all();
    }
  }

  // Queues `row` (with `waiter` when someone waits for it), or spools it right away.
  void add(AuditRow row, Waiter waiter) {
    sanitize_audit_row(row);
    ++counters.enqueued;
    const bool waits = static_cast<bool>(waiter.durable);
    {
      std::lock_guard<std::mutex> lock(mu);
      const std::int64_t busy_since = busy_since_ms.load(std::memory_order_relaxed);
      const bool stalled =
          busy_since != 0 && !queue.empty() && now_ms() - busy_since > options.stall_spool_after_ms;
      const bool accepting = !stopping || running;
      if (accepting && !stalled && queue.size() < options.queue_capacity) {
        queue.push_back(Entry{std::move(row), std::move(waiter)});
        if (waits) {
          if (!watchdog.joinable() && !stopping) {
            watchdog = std::thread([this] {
              pthread_setname_np(pthread_self(), "hg-audit-watch");
              watch();
            });
          }
          if (++queued_waiters == 1) cv.notify_one();
        } else if (queue.size() == std::min(kStreamChunkRows, options.batch_size) ||
                   queue.size() == options.batch_size) {
          cv.notify_one();  // a chunk for the open COPY (stream_batch), or a full batch
        }
        return;
      }
    }
    // Producer-side spooling: the queue is full or the writer hangs on PostgreSQL. Spool
    // appends are serialised by the spool's own mutex.
    spool_rows({std::move(row)});
    if (waits) {
      std::vector<Waiter> waiters;
      waiters.push_back(std::move(waiter));
      run_waiters(waiters);
    }
  }
};

AuditWriter::AuditWriter(AuditWriterOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

AuditWriter::~AuditWriter() { stop(); }

void AuditWriter::start() {
  std::lock_guard<std::mutex> stop_lock(impl_->stop_mu);
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->running || impl_->stopping) return;
  impl_->running = true;
  impl_->thread = std::thread([impl = impl_.get()] {
    pthread_setname_np(pthread_self(), "hg-audit");
    impl->run();
  });
}

void AuditWriter::enqueue(AuditRow row) { impl_->add(std::move(row), Impl::Waiter{}); }

void AuditWriter::enqueue(AuditRow row, Durable durable) {
  impl_->add(std::move(row), Impl::Waiter{std::move(durable), now_us()});
}

void AuditWriter::stop() {
  std::lock_guard<std::mutex> stop_lock(impl_->stop_mu);
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->wait_for_writer_exit();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->forget_socket();
  // The watchdog goes last: it still answers senders while a stuck writer is being drained.
  std::thread watchdog;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->watchdog_stopping = true;
    watchdog = std::move(impl_->watchdog);
  }
  impl_->watchdog_cv.notify_all();
  if (watchdog.joinable()) watchdog.join();
  // Never started, or rows raced in during shutdown: they still must not be lost.
  std::vector<AuditRow> rest;
  std::vector<Impl::Waiter> waiters;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->take_locked(impl_->queue.size(), rest, waiters);
  }
  impl_->spool_rows(rest);
  impl_->run_waiters(waiters);
}

std::size_t AuditWriter::queue_depth() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->queue.size();
}

const AuditCounters& AuditWriter::counters() const { return impl_->counters; }

}  // namespace hookguard::db
