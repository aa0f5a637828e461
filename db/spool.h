// Append-only on-disk spool of audit rows: bridges PostgreSQL outages and survives crashes.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "db/audit_row.h"
#include "policy/result.h"

namespace hookguard::db {

/// Where the spool lives and how big it may grow.
struct SpoolOptions {
  std::string dir = "var/spool";
  std::uint64_t max_bytes = std::uint64_t{1} << 30;    // beyond this, rows are dropped loudly
  std::uint64_t file_bytes = std::uint64_t{64} << 20;  // a file rotates past this size
};

/// Up to N of the oldest unacknowledged rows, all from one spool file, in spool order.
struct SpoolChunk {
  std::uint64_t file_seq = 0;
  std::uint64_t end_offset = 0;  // where the next chunk of that file starts
  std::vector<AuditRow> rows;
};

/// Spool counters, readable from any thread.
struct SpoolStats {
  std::uint64_t pending_bytes = 0;  // bytes in spool files not yet deleted
  std::uint64_t files = 0;
  std::uint64_t dropped = 0;  // rows refused because the spool was at max_bytes
  std::uint64_t corrupt = 0;  // lines skipped on replay (torn by a crash, bad CRC)
};

/// Encodes one row as a spool line (version tag, CRC-32, JSON, '\n'); exposed for tests.
std::string encode_spool_line(const AuditRow& row);
/// Decodes one spool line without its '\n'; an error for a torn, corrupt or unknown line.
Result<AuditRow> decode_spool_line(const std::string& line);

/// Files `spool-<seq>.log` in `dir`, appended in order and replayed in order; a file is
/// deleted only once every row in it was acknowledged. Thread-safe (one mutex). One process
/// per directory (an exclusive flock on `dir/.lock`).
class Spool {
 public:
  /// Creates `dir`, locks it and finds the files an earlier run left. Appends always go to a
  /// new file, so a torn last line of an old file never swallows a new row.
  static Result<std::unique_ptr<Spool>> open(SpoolOptions options);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  /// Appends `rows` in order, then fdatasync()s once. Returns how many were stored; the
  /// rest did not fit under max_bytes and are counted as dropped and reported on stderr.
  Result<std::size_t> append(const std::vector<AuditRow>& rows);
  /// The oldest unacknowledged rows (at most max_rows, from one file); empty when none are left.
  Result<SpoolChunk> peek(std::size_t max_rows);
  /// Records that a chunk from peek() is committed; deletes its file once it is fully acked.
  Result<void> ack(const SpoolChunk& chunk);
  /// Appends a row PostgreSQL rejected, with the reason, to `dir/quarantine.log` (fdatasync'd).
  Result<void> quarantine(const std::vector<std::pair<AuditRow, std::string>>& rows);

  /// True when no unacknowledged row is left (cheap; no I/O).
  bool empty() const;
  SpoolStats stats() const;
  const std::string& dir() const { return options_.dir; }

 private:
  struct File {
    std::uint64_t seq = 0;
    std::uint64_t size = 0;
  };

  explicit Spool(SpoolOptions options);
  std::string path_of(std::uint64_t seq) const;
  Result<void> open_active_locked();
  void seal_active_locked();

  SpoolOptions options_;
  mutable std::mutex mu_;
  int lock_fd_ = -1;
  int active_fd_ = -1;  // the file appends go to; -1 until the next append
  std::uint64_t next_seq_ = 1;
  std::vector<File> files_;  // ascending seq; the active file, if any, is last
  std::uint64_t total_bytes_ = 0;
  std::uint64_t read_offset_ = 0;  // acknowledged prefix of files_.front()
  std::uint64_t dropped_ = 0;
  std::uint64_t corrupt_ = 0;
};

}  // namespace hookguard::db
