#include "db/pg_socket_guard.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pqxx/pqxx>
#include <utility>
#include <vector>

namespace hookguard::db {
namespace {

// How often wait_or_cut() cuts again while the worker has not finished yet.
constexpr std::chrono::milliseconds kRecutInterval{20};

bool has_param(const std::string& dsn, const std::string& key) {
  return dsn.find(key + "=") != std::string::npos;
}

}  // namespace

PgSocketGuard::Tracked::Tracked(Tracked&& other) noexcept
    : guard_(std::exchange(other.guard_, nullptr)), id_(std::exchange(other.id_, 0)) {}

PgSocketGuard::Tracked& PgSocketGuard::Tracked::operator=(Tracked&& other) noexcept {
  if (this != &other) {
    release();
    guard_ = std::exchange(other.guard_, nullptr);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

void PgSocketGuard::Tracked::release() noexcept {
  if (guard_ != nullptr) guard_->release(id_);
  guard_ = nullptr;
  id_ = 0;
}

PgSocketGuard::~PgSocketGuard() {
  for (const auto& [id, fd] : fds_) ::close(fd);
}

PgSocketGuard::Tracked PgSocketGuard::track(const pqxx::connection_base& conn) {
  const int fd = conn.sock();
  if (fd < 0) return {};
  const int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return {};  // out of descriptors: the call can still end on its own
  std::lock_guard<std::mutex> lock(mu_);
  const std::uint64_t id = next_id_++;
  fds_.emplace(id, dup);
  return Tracked(this, id);
}

PgSocketGuard::Tracked PgSocketGuard::track(PgSocketGuard* guard,
                                            const pqxx::connection_base& conn) {
  return guard != nullptr ? guard->track(conn) : Tracked();
}

void PgSocketGuard::release(std::uint64_t id) noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = fds_.find(id);
  if (it == fds_.end()) return;
  ::close(it->second);
  fds_.erase(it);
}

void PgSocketGuard::cut() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, fd] : fds_) ::shutdown(fd, SHUT_RDWR);
}

bool PgSocketGuard::wait_or_cut(std::chrono::milliseconds grace,
                                const std::function<bool(std::chrono::milliseconds)>& finished) {
  if (finished(grace)) return false;
  do {
    cut();
  } while (!finished(kRecutInterval));
  return true;
}

std::size_t PgSocketGuard::tracked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fds_.size();
}

std::string dsn_with_defaults(const std::string& dsn, const std::string& application_name) {
  const std::vector<std::pair<std::string, std::string>> defaults = {
      {"connect_timeout", "2"},    {"keepalives", "1"},
      {"keepalives_idle", "5"},    {"keepalives_interval", "2"},
      {"keepalives_count", "2"},   {"tcp_user_timeout", "5000"},
      {"client_encoding", "UTF8"}, {"application_name", application_name}};
  const bool uri = dsn.rfind("postgresql://", 0) == 0 || dsn.rfind("postgres://", 0) == 0;
  std::string out = dsn;
  bool has_query = uri && dsn.find('?') != std::string::npos;
  for (const auto& [key, value] : defaults) {
    if (has_param(dsn, key)) continue;
    if (uri) {
      out += has_query ? '&' : '?';
      has_query = true;
    } else if (!out.empty()) {
      out += ' ';
    }
    out += key + "=" + value;
  }
  return out;
}

}  // namespace hookguard::db
