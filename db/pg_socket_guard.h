// Ending a PostgreSQL call that hangs, from another thread (shutdown of a worker thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace pqxx {
class connection_base;
}

namespace hookguard::db {

/// Lets one thread end the PostgreSQL calls of another that hang. A hung server (stopped
/// process, paused VM) still completes TCP handshakes and acknowledges what it is sent, so
/// neither keepalives nor tcp_user_timeout ever end a call that waits for its answer: the only
/// way out is to shut the socket down, after which the call fails like any lost connection.
///
/// The worker thread registers each connection it opens (track()); the guard keeps a dup() of
/// its socket, so the descriptor it shuts down is its own and can never be a number that libpq
/// has already closed and the kernel handed to another file. A connect has no socket to cut
/// yet: bound it with connect_timeout (dsn_with_defaults()).
class PgSocketGuard {
 public:
  /// One registered socket; releasing it (destruction, or assigning another) closes the dup.
  /// Must not outlive its guard. Move-only; a default-constructed one registers nothing.
  class Tracked {
   public:
    Tracked() = default;
    ~Tracked() { release(); }
    Tracked(Tracked&& other) noexcept;
    Tracked& operator=(Tracked&& other) noexcept;
    Tracked(const Tracked&) = delete;
    Tracked& operator=(const Tracked&) = delete;

   private:
    friend class PgSocketGuard;
    Tracked(PgSocketGuard* guard, std::uint64_t id) : guard_(guard), id_(id) {}
    void release() noexcept;

    PgSocketGuard* guard_ = nullptr;
    std::uint64_t id_ = 0;
  };

  PgSocketGuard() = default;
  ~PgSocketGuard();
  PgSocketGuard(const PgSocketGuard&) = delete;
  PgSocketGuard& operator=(const PgSocketGuard&) = delete;

  /// Registers `conn`'s socket until the returned handle is released; call it right after
  /// connecting, and release the handle no later than the connection is closed (the dup would
  /// otherwise keep the TCP connection open).
  [[nodiscard]] Tracked track(const pqxx::connection_base& conn);
  /// `guard->track(conn)`, or nothing when `guard` is null (for code where the guard is optional).
  [[nodiscard]] static Tracked track(PgSocketGuard* guard, const pqxx::connection_base& conn);

  /// Shuts every registered socket down (both directions): a call blocked on one fails at once.
  void cut();

  /// Waits for a worker thread to finish: `finished(timeout)` waits up to `timeout` for it and
  /// says whether it has. Past `grace` the worker is taken to hang in a PostgreSQL call: its
  /// sockets are cut, and cut again every few milliseconds until it finishes (having failed, it
  /// may be in a new call on a new connection before it notices it should stop). Returns
  /// whether a cut was needed.
  bool wait_or_cut(std::chrono::milliseconds grace,
                   const std::function<bool(std::chrono::milliseconds)>& finished);

  /// How many sockets are registered now.
  std::size_t tracked() const;

 private:
  void release(std::uint64_t id) noexcept;

  mutable std::mutex mu_;
  std::map<std::uint64_t, int> fds_;  // registration id -> our dup of the socket
  std::uint64_t next_id_ = 1;
};

/// `dsn` plus the libpq parameters every long-lived gateway connection wants, unless the DSN
/// sets them itself: connect_timeout (libpq would otherwise wait forever for a server that
/// accepted the TCP connection but never answers, and a connect cannot be cut), TCP keepalives
/// and tcp_user_timeout (to notice a server that vanished), client_encoding UTF8, and
/// `application_name` (so that pg_stat_activity tells the connections apart). Works for URI
/// and keyword=value DSNs.
std::string dsn_with_defaults(const std::string& dsn, const std::string& application_name);

}  // namespace hookguard::db
