#include "db/spool.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>

namespace hookguard::db {
namespace {

using nlohmann::json;

// Bumped when the line format changes; old spools stay readable by keeping old decoders.
constexpr const char* kLineVersion = "HG1";

// CRC-32 (IEEE, as zlib): detects a line that a crash or a bad disk left half-written.
std::uint32_t crc32(const std::string& data) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1U) ? 0xEDB88320U ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t crc = 0xFFFFFFFFU;
  for (unsigned char ch : data) crc = table[(crc ^ ch) & 0xFFU] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFU;
}

template <class T>
void put_optional(json& j, const char* key, const std::optional<T>& value) {
  if (value) j[key] = *value;
}

template <class T>
void get_optional(const json& j, const char* key, std::optional<T>& out) {
  auto it = j.find(key);
  if (it != j.end() && !it->is_null()) out = it->get<T>();
}

std::string errno_text(int err) { return std::error_code(err, std::system_category()).message(); }

// write() may be partial (signals, ENOSPC mid-way); loop until done or a real error.
bool write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// A new file's directory entry is only durable once the directory itself is synced.
void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

bool parse_seq(const std::string& name, std::uint64_t& seq) {
  constexpr std::string_view prefix = "spool-";
  constexpr std::string_view suffix = ".log";
  if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return false;
  }
  std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.empty() ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  seq = std::stoull(digits);
  return true;
}

}  // namespace

std::string encode_spool_line(const AuditRow& row) {
  json j;
  j["created_us"] = row.created_unix_us;
  put_optional(j, "trigger_id", row.trigger_id);
  j["webhook_key"] = row.webhook_key;
  j["request_id"] = row.request_id;
  put_optional(j, "delivery_id", row.delivery_id);
  put_optional(j, "event_type", row.event_type);
  put_optional(j, "source_ip", row.source_ip);
  put_optional(j, "peer_ip", row.peer_ip);
  put_optional(j, "user_agent", row.user_agent);
  j["method"] = row.method;
  j["payload_size_bytes"] = row.payload_size_bytes;
  j["outcome"] = row.outcome;
  j["status_code"] = row.status_code;
  put_optional(j, "error_message", row.error_message);
  put_optional(j, "hmac_verified", row.hmac_verified);
  j["rate_limited"] = row.rate_limited;
  put_optional(j, "ip_allowed", row.ip_allowed);
  j["monitor"] = row.monitor;
  put_optional(j, "upstream_status", row.upstream_status);
  put_optional(j, "upstream_ms", row.upstream_ms);
  j["processing_time_ms"] = row.processing_time_ms;
  // Rows are sanitised before they get here; `replace` only guards against a caller that
  // did not, so that dump() can never throw.
  std::string body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  char crc[9];
  std::snprintf(crc, sizeof crc, "%08" PRIx32, crc32(body));
  std::string line;
  line.reserve(body.size() + 16);
  line.append(kLineVersion).append("\t").append(crc).append("\t").append(body).append("\n");
  return line;
}

Result<AuditRow> decode_spool_line(const std::string& line) {
  const std::string version = std::string(kLineVersion) + "\t";
  if (line.compare(0, version.size(), version) != 0) {
    return fail("spool_corrupt", "unknown spool line version");
  }
  if (line.size() < version.size() + 9 || line[version.size() + 8] != '\t') {
    return fail("spool_corrupt", "spool line too short");
  }
  std::string crc_text = line.substr(version.size(), 8);
  std::string body = line.substr(version.size() + 9);
  char crc[9];
  std::snprintf(crc, sizeof crc, "%08" PRIx32, crc32(body));
  if (crc_text != crc) return fail("spool_corrupt", "spool line CRC mismatch");
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return fail("spool_corrupt", "spool line is not a JSON object");
  try {
    AuditRow row;
    row.created_unix_us = j.at("created_us").get<std::int64_t>();
    get_optional(j, "trigger_id", row.trigger_id);
    row.webhook_key = j.at("webhook_key").get<std::string>();
    row.request_id = j.at("request_id").get<std::string>();
    get_optional(j, "delivery_id", row.delivery_id);
    get_optional(j, "event_type", row.event_type);
    get_optional(j, "source_ip", row.source_ip);
    get_optional(j, "peer_ip", row.peer_ip);
    get_optional(j, "user_agent", row.user_agent);
    row.method = j.at("method").get<std::string>();
    row.payload_size_bytes = j.at("payload_size_bytes").get<std::int64_t>();
    row.outcome = j.at("outcome").get<std::string>();
    row.status_code = j.at("status_code").get<int>();
    get_optional(j, "error_message", row.error_message);
    get_optional(j, "hmac_verified", row.hmac_verified);
    row.rate_limited = j.at("rate_limited").get<bool>();
    get_optional(j, "ip_allowed", row.ip_allowed);
    row.monitor = j.at("monitor").get<bool>();
    get_optional(j, "upstream_status", row.upstream_status);
    get_optional(j, "upstream_ms", row.upstream_ms);
    row.processing_time_ms = j.at("processing_time_ms").get<int>();
    return row;
  } catch (const json::exception& e) {
    return fail("spool_corrupt", std::string("spool line has a bad field: ") + e.what());
  }
}

Spool::Spool(SpoolOptions options) : options_(std::move(options)) {}

Spool::~Spool() {
  if (active_fd_ >= 0) ::close(active_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

Result<std::unique_ptr<Spool>> Spool::open(SpoolOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return fail("spool_unavailable",
                "audit.spool_dir: cannot create " + options.dir + ": " + ec.message());
  }
  std::unique_ptr<Spool> spool(new Spool(std::move(options)));
  const std::string lock_path = spool->options_.dir + "/.lock";
  spool->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (spool->lock_fd_ < 0) {
    return fail("spool_unavailable", "cannot open " + lock_path + ": " + errno_text(errno));
  }
  // Two writers appending to and deleting the same files would lose rows.
  if (::flock(spool->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return fail("spool_unavailable",
                "audit.spool_dir: " + spool->options_.dir + " is in use by another process");
  }
  for (const auto& entry : std::filesystem::directory_iterator(spool->options_.dir, ec)) {
    std::uint64_t seq = 0;
    if (!entry.is_regular_file(ec) || !parse_seq(entry.path().filename().string(), seq)) continue;
    std::uint64_t size = entry.file_size(ec);
    if (ec) continue;
    spool->files_.push_back(File{seq, size});
    spool->total_bytes_ += size;
    spool->next_seq_ = std::max(spool->next_seq_, seq + 1);
  }
  if (ec) {
    return fail("spool_unavailable", "cannot list " + spool->options_.dir + ": " + ec.message());
  }
  std::sort(spool->files_.begin(), spool->files_.end(),
            [](const File& a, const File& b) { return a.seq < b.seq; });
  return spool;
}

std::string Spool::path_of(std::uint64_t seq) const {
  char name[48];
  std::snprintf(name, sizeof name, "/spool-%020" PRIu64 ".log", seq);
  return options_.dir + name;
}

Result<void> Spool::open_active_locked() {
  const std::uint64_t seq = next_seq_;
  const std::string path = path_of(seq);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return fail("spool_io", "cannot create " + path + ": " + errno_text(errno));
  fsync_dir(options_.dir);
  ++next_seq_;
  active_fd_ = fd;
  files_.push_back(File{seq, 0});
  return {};
}

void Spool::seal_active_locked() {
  if (active_fd_ < 0) return;
  ::close(active_fd_);
  active_fd_ = -1;
}

Result<std::size_t> Spool::append(const std::vector<AuditRow>& rows) {
  if (rows.empty()) return std::size_t{0};
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t stored = 0;
  std::string buffer;
  auto flush_buffer = [&]() -> Result<void> {
    if (buffer.empty()) return {};
    File& file = files_.back();
    if (!write_all(active_fd_, buffer)) {
      int err = errno;
      // Cut the partial write off so the file stays a sequence of whole lines.
      if (::ftruncate(active_fd_, static_cast<off_t>(file.size)) != 0) seal_active_locked();
      return fail("spool_io", "spool write failed: " + errno_text(err));
    }
    if (::fdatasync(active_fd_) != 0) {
      int err = errno;
      // After a failed fdatasync the kernel may have dropped those pages: nothing says the
      // bytes reached the disk, and the caller counts the rows as lost. Cut them off and start
      // a new file, so the bytes this spool accounts for stay exactly the file's whole lines.
      if (::ftruncate(active_fd_, static_cast<off_t>(file.size)) != 0) {
        std::fprintf(stderr, "hookguard: audit spool: cannot cut off an unsynced write: %s\n",
                     errno_text(errno).c_str());
      }
      seal_active_locked();
      return fail("spool_io", "spool fdatasync failed: " + errno_text(err));
    }
    file.size += buffer.size();
    total_bytes_ += buffer.size();
    buffer.clear();
    return {};
  };
  std::size_t dropped_now = 0;
  for (const AuditRow& row : rows) {
    std::string line = encode_spool_line(row);
    if (total_bytes_ + buffer.size() + line.size() > options_.max_bytes) {
      ++dropped_now;
      continue;
    }
    if (active_fd_ < 0 || files_.back().size + buffer.size() >= options_.file_bytes) {
      if (auto r = flush_buffer(); !r) return tl::unexpected(r.error());
      seal_active_locked();
      if (auto r = open_active_locked(); !r) return tl::unexpected(r.error());
    }
    buffer += line;
    ++stored;
  }
  if (auto r = flush_buffer(); !r) return tl::unexpected(r.error());
  if (dropped_now > 0) {
    dropped_ += dropped_now;
    std::fprintf(stderr,
                 "hookguard: AUDIT ROWS LOST: spool %s is full (%" PRIu64 " of %" PRIu64
                 " bytes); dropped %zu rows now, %" PRIu64 " in total\n",
                 options_.dir.c_str(), total_bytes_, options_.max_bytes, dropped_now, dropped_);
  }
  return stored;
}

Result<SpoolChunk> Spool::peek(std::size_t max_rows) {
  max_rows = std::max<std::size_t>(max_rows, 1);
  std::lock_guard<std::mutex> lock(mu_);
  SpoolChunk chunk;
  while (!files_.empty() && chunk.rows.empty()) {
    File& file = files_.front();
    // Replay reaches the file appends go to: seal it so it can be deleted once acked.
    if (files_.size() == 1 && active_fd_ >= 0) seal_active_locked();
    const std::string path = path_of(file.seq);
    chunk.file_seq = file.seq;
    chunk.end_offset = read_offset_;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      // Removed or unreadable behind our back: skipping it beats blocking every later row.
      std::fprintf(stderr, "hookguard: AUDIT ROWS LOST: cannot read spool file %s: %s\n",
                   path.c_str(), errno_text(errno).c_str());
      ++corrupt_;
      total_bytes_ -= file.size;
      files_.erase(files_.begin());
      read_offset_ = 0;
      continue;
    }
    in.seekg(static_cast<std::streamoff>(read_offset_));
    std::string line;
    while (chunk.rows.size() < max_rows && chunk.end_offset < file.size && std::getline(in, line)) {
      const bool complete = !in.eof();
      std::uint64_t consumed = line.size() + (complete ? 1 : 0);
      // Never read past what this process knows is whole lines of the file.
      if (chunk.end_offset + consumed > file.size) consumed = file.size - chunk.end_offset;
      chunk.end_offset += consumed;
      if (!complete) {
        ++corrupt_;
        std::fprintf(stderr,
                     "hookguard: audit spool %s: skipped a torn last line at offset %" PRIu64 "\n",
                     path.c_str(), chunk.end_offset - consumed);
        break;
      }
      auto row = decode_spool_line(line);
      if (!row) {
        ++corrupt_;
        std::fprintf(stderr,
                     "hookguard: audit spool %s: skipped a line at offset %" PRIu64 ": %s\n",
                     path.c_str(), chunk.end_offset - consumed, row.error().message.c_str());
        continue;
      }
      chunk.rows.push_back(std::move(*row));
    }
    if (chunk.rows.empty()) {
      // Nothing usable left in this file (only corrupt lines): done with it.
      if (chunk.end_offset >= file.size || !in) {
        total_bytes_ -= file.size;
        std::error_code ec;
        std::filesystem::remove(path, ec);
        files_.erase(files_.begin());
        read_offset_ = 0;
        chunk.end_offset = 0;
        continue;
      }
      read_offset_ = chunk.end_offset;
    }
  }
  return chunk;
}

Result<void> Spool::ack(const SpoolChunk& chunk) {
  std::lock_guard<std::mutex> lock(mu_);
  if (files_.empty() || files_.front().seq != chunk.file_seq || chunk.end_offset < read_offset_) {
    return fail("spool_state", "ack of a chunk that is not the oldest unacknowledged one");
  }
  read_offset_ = chunk.end_offset;
  File& file = files_.front();
  if (read_offset_ >= file.size && !(files_.size() == 1 && active_fd_ >= 0)) {
    const std::string path = path_of(file.seq);
    std::error_code ec;
    std::filesystem::remove(path, ec);
    if (ec) return fail("spool_io", "cannot delete " + path + ": " + ec.message());
    total_bytes_ -= file.size;
    files_.erase(files_.begin());
    read_offset_ = 0;
  }
  return {};
}

Result<void> Spool::quarantine(const std::vector<std::pair<AuditRow, std::string>>& rows) {
  if (rows.empty()) return {};
  std::lock_guard<std::mutex> lock(mu_);
  std::string buffer;
  for (const auto& [row, reason] : rows) {
    json j;
    j["error"] = reason;
    j["line"] = encode_spool_line(row);
    buffer += j.dump(-1, ' ', false, json::error_handler_t::replace);
    buffer += '\n';
  }
  const std::string path = options_.dir + "/quarantine.log";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return fail("spool_io", "cannot open " + path + ": " + errno_text(errno));
  bool ok = write_all(fd, buffer) && ::fdatasync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok) return fail("spool_io", "cannot write " + path + ": " + errno_text(err));
  return {};
}

bool Spool::empty() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_bytes_ == read_offset_;
}

SpoolStats Spool::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return SpoolStats{total_bytes_ - read_offset_, files_.size(), dropped_, corrupt_};
}

}  // namespace hookguard::db
