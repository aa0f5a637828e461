#include "gateway/forwarder.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>

#include "gateway/http1_client.h"
#include "gateway/http1_response_parser.h"
#include "policy/cidr_set.h"

namespace hookguard::gateway {
namespace {

using Clock = std::chrono::steady_clock;
using Kind = UpstreamResult::Kind;

// epoll_wait returns earlier whenever a socket is ready, libcurl's timer is due or a submit
// wakes it; this only bounds how long an idle loop sleeps.
constexpr int kIdlePollMs = 1000;
constexpr int kMaxEvents = 64;

void init_curl_once() {
  static std::once_flag once;
  // curl_global_init is not thread-safe on its own (libcurl docs, "curl_global_init").
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

using http1::is_hop_by_hop;
using http1::is_idempotent;
using http1::is_owned_request_field;
using http1::kMaxResponseHeaderBytes;
using http1::kMaxResponseHeaderFields;

int elapsed_ms_since(Clock::time_point start) {
  return static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
}

}  // namespace

struct Forwarder::Impl {
  // One queued submission, moved across threads through the inbox.
  struct Pending {
    UpstreamRequest request;
    Callback done;
    Clock::time_point submitted;
  };

  // One easy handle and everything a transfer on it needs; recycled through free_list.
  struct Transfer {
    Impl* impl = nullptr;
    CURL* easy = nullptr;
    curl_slist* headers = nullptr;
    UpstreamRequest request;
    Callback done;
    Clock::time_point submitted;
    UpstreamResult result;
    std::vector<std::string> connection_tokens;  // extra hop-by-hop names from Connection
    std::size_t header_bytes = 0;
    int header_fields = 0;
    bool in_header_block = false;
    bool headers_too_large = false;
    bool headers_malformed = false;
    bool body_too_large = false;
    bool denied = false;
    bool idempotent = false;
    int attempts = 0;  // prereq calls: more than one means libcurl is retrying
    bool replay_refused = false;
    char error_buffer[CURL_ERROR_SIZE] = {};
  };

  explicit Impl(ForwarderOptions opts) : options(std::move(opts)) {
    auto parsed = policy::CidrSet::parse(options.deny_networks);
    if (!parsed) {
      // Start-up only: config validation already names the key; this guards direct callers.
      throw std::invalid_argument("upstream.deny_networks" + parsed.error().message);
    }
    deny = std::move(*parsed);
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0) throw std::runtime_error("eventfd failed");
  }

  ~Impl() { close(wake_fd); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  ForwarderOptions options;
  policy::CidrSet deny;

  mutable std::mutex mutex;
  std::vector<Pending> inbox;                // guarded by mutex
  std::vector<std::function<void()>> tasks;  // guarded by mutex: work posted to the loop
  bool started = false;                      // guarded by mutex
  bool stopping = false;                     // guarded by mutex
  std::atomic<std::size_t> in_flight{0};
  std::thread thread;
  std::mutex join_mutex;  // serialises concurrent stop() calls

  // Owned by the loop thread once started.
  CURLM* multi = nullptr;
  int epoll_fd = -1;
  int wake_fd = -1;  // eventfd: submit/stop wake the loop; lives as long as Impl
  bool timer_armed = false;
  Clock::time_point timer_due;
  std::vector<Pending> drained;
  std::vector<std::function<void()>> drained_tasks;
  std::unique_ptr<http1::Client> client;  // http:// upstreams
  std::vector<std::unique_ptr<Transfer>> transfers;
  std::vector<Transfer*> free_list;
  int active = 0;

  // The epoll registration of every socket libcurl opened (through on_open_socket). A pooled
  // keep-alive connection stays registered for EPOLLIN between transfers, so a request on a
  // reused connection costs no epoll_ctl at all (it cost two: libcurl says REMOVE when a
  // transfer ends and IN when the next begins). on_close_socket forgets a socket before its fd
  // number can be reused.
  struct SocketState {
    bool in_epoll = false;
    std::uint32_t events = 0;  // registered with epoll (valid when in_epoll)
    bool watched = false;      // libcurl currently wants events for it
  };
  std::unordered_map<int, SocketState> sockets;

  static void finish(Callback& done, UpstreamResult result) {
    // A throwing callback must not take the forwarder thread (and every other request) down.
    try {
      done(std::move(result));
    } catch (...) {
    }
  }

  static UpstreamResult inline_result(Kind kind, const char* error) {
    UpstreamResult r;
    r.kind = kind;
    r.error = error;
    return r;
  }

  // Event loop with curl_multi_socket_action on epoll: each wakeup costs work only for the
  // sockets that are ready. curl_multi_poll/perform walk every transfer on every wakeup, so
  // 1000 requests hanging on one upstream cut everyone else's throughput by ~3x (measured).
  void run() {
    std::array<epoll_event, kMaxEvents> events{};
    while (true) {
      bool stop_requested = false;
      {
        std::lock_guard lock(mutex);
        drained.swap(inbox);
        drained_tasks.swap(tasks);
        stop_requested = stopping;
      }
      for (auto& task : drained_tasks) task();
      drained_tasks.clear();
      if (stop_requested && drained.empty() && busy() == 0) break;
      for (auto& p : drained) begin(std::move(p));
      drained.clear();
      // stop()'s wakeup may already have been consumed while transfers were still running:
      // re-check at once instead of sleeping once the last one is done.
      if (stop_requested && busy() == 0) continue;

      const int n = epoll_wait(epoll_fd, events.data(), kMaxEvents, next_wait_ms());
      int running = 0;
      for (int i = 0; i < n; ++i) {
        if (events[i].data.u64 & http1::Client::kEpollTag) {
          client->on_event(events[i].data.u64, events[i].events);
          continue;
        }
        const int fd = events[i].data.fd;
        if (fd == wake_fd) {
          std::uint64_t count = 0;
          [[maybe_unused]] auto r = read(wake_fd, &count, sizeof count);
          continue;
        }
        auto it = sockets.find(fd);
        if (it == sockets.end()) continue;  // closed by an earlier event of this batch
        if (!it->second.watched) {
          // An idle pooled connection became readable: the upstream closed it (or sent bytes
          // nobody asked for). Stop listening, or level-triggered epoll reports it forever;
          // libcurl checks a connection before reusing it and drops a dead one.
          unregister(fd, it->second);
          continue;
        }
        const std::uint32_t ev = events[i].events;
        int flags = 0;
        if (ev & EPOLLIN) flags |= CURL_CSELECT_IN;
        if (ev & EPOLLOUT) flags |= CURL_CSELECT_OUT;
        if (ev & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action(multi, fd, flags, &running);
      }
      if (timer_armed && Clock::now() >= timer_due) {
        // Disarm first: libcurl re-arms through on_timer from inside this call.
        timer_armed = false;
        curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
      }
      int queued = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
        if (msg->msg == CURLMSG_DONE) complete(msg->easy_handle, msg->data.result);
      }
      client->on_timer(Clock::now());
    }
  }

  std::size_t busy() const { return static_cast<std::size_t>(active) + client->active(); }

  // Until libcurl's timer or the lean client's next deadline, at most kIdlePollMs.
  int next_wait_ms() const {
    std::optional<Clock::time_point> due = client->next_deadline();
    if (timer_armed && (!due || timer_due < *due)) due = timer_due;
    if (!due) return kIdlePollMs;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(*due - Clock::now());
    return static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, kIdlePollMs));
  }

  // Runs `task` on the loop thread (the resolver thread's answers come this way).
  void post(std::function<void()> task) {
    std::lock_guard lock(mutex);
    const bool was_empty = tasks.empty() && inbox.empty();
    tasks.push_back(std::move(task));
    if (was_empty) wake();
  }

  static int on_socket(CURL*, curl_socket_t fd, int what, void* userp, void*) {
    auto* impl = static_cast<Impl*>(userp);
    SocketState& state = impl->sockets[fd];
    if (what == CURL_POLL_REMOVE) {
      // Back to the pool (or about to be closed): keep EPOLLIN so that an upstream closing it
      // is noticed (see run()), but never EPOLLOUT, which an idle socket signals all the time.
      state.watched = false;
      if (state.in_epoll && (state.events & EPOLLOUT)) impl->register_events(fd, state, EPOLLIN);
      return 0;
    }
    state.watched = true;
    std::uint32_t want = 0;
    if (what & CURL_POLL_IN) want |= EPOLLIN;
    if (what & CURL_POLL_OUT) want |= EPOLLOUT;
    if (!state.in_epoll || state.events != want) impl->register_events(fd, state, want);
    return 0;
  }

  void register_events(int fd, SocketState& state, std::uint32_t want) {
    epoll_event ev{};
    ev.data.fd = fd;
    ev.events = want;
    const int op = state.in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(epoll_fd, op, fd, &ev) != 0) {
      // Our record disagrees with the kernel's (ENOENT/EEXIST): the other operation fixes it.
      epoll_ctl(epoll_fd, op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
    }
    state.in_epoll = true;
    state.events = want;
  }

  void unregister(int fd, SocketState& state) {
    if (state.in_epoll) epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
    state.in_epoll = false;
    state.events = 0;
  }

  static int on_close_socket(void* clientp, curl_socket_t fd) {
    // Closing removes the fd from the epoll set; forget it before the number is reused.
    static_cast<Impl*>(clientp)->sockets.erase(fd);
    return close(fd);
  }

  // libcurl forbids driving the multi handle from this callback: only record the deadline.
  static int on_timer(CURLM*, long timeout_ms, void* userp) {
    auto* impl = static_cast<Impl*>(userp);
    impl->timer_armed = timeout_ms >= 0;
    if (impl->timer_armed) impl->timer_due = Clock::now() + std::chrono::milliseconds(timeout_ms);
    return 0;
  }

  void wake() {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto r = write(wake_fd, &one, sizeof one);
  }

  // libcurl's CURLMOPT_MAXCONNECTS counts connections in use too: when a transfer ends with the
  // cache over the limit, the oldest idle connection is closed (conncache.c). A fixed limit
  // thus kills keep-alive as soon as more transfers are in flight than the limit (e.g. while
  // one upstream hangs), and the default (4x the easy handles) shrinks it between bursts
  // (DESIGN §8). So the limit follows the load: in-flight transfers plus max_connections idle.
  void update_cache_size() {
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS,
                      static_cast<long>(active + std::max(1, options.max_connections)));
  }

  Transfer* acquire() {
    if (!free_list.empty()) {
      Transfer* t = free_list.back();
      free_list.pop_back();
      return t;
    }
    auto t = std::make_unique<Transfer>();
    t->impl = this;
    t->easy = curl_easy_init();
    if (t->easy == nullptr) return nullptr;
    transfers.push_back(std::move(t));
    return transfers.back().get();
  }

  void release(Transfer* t) {
    curl_slist_free_all(t->headers);
    t->headers = nullptr;
    t->request = UpstreamRequest{};
    t->done = nullptr;
    t->result = UpstreamResult{};
    t->connection_tokens.clear();
    // Keep as many idle handles as pooled connections; beyond that a burst's handles go.
    if (free_list.size() < static_cast<std::size_t>(std::max(options.max_connections, 1))) {
      free_list.push_back(t);
      return;
    }
    curl_easy_cleanup(t->easy);
    std::erase_if(transfers, [t](const std::unique_ptr<Transfer>& p) { return p.get() == t; });
  }

  // http:// goes to the lean client, everything else (https://, and URLs it does not take) to
  // libcurl, which also refuses the schemes we do not speak.
  void begin(Pending p) {
    if (!options.http_via_curl) {
      if (auto url = http1::parse_http_url(p.request.url)) {
        client->submit(std::move(p.request), std::move(*url), std::move(p.done), p.submitted);
        return;
      }
    }
    begin_curl(std::move(p));
  }

  void begin_curl(Pending p) {
    Transfer* t = acquire();
    if (t == nullptr) {
      in_flight.fetch_sub(1);
      finish(p.done, inline_result(Kind::kConnectError, "curl_easy_init failed"));
      return;
    }
    t->request = std::move(p.request);
    t->done = std::move(p.done);
    t->submitted = p.submitted;
    t->header_bytes = 0;
    t->header_fields = 0;
    t->in_header_block = false;
    t->headers_too_large = t->headers_malformed = t->body_too_large = t->denied = false;
    t->replay_refused = false;
    t->attempts = 0;
    t->error_buffer[0] = '\0';

    if (const char* why = configure(t)) {
      fail_before_start(t, why);
      return;
    }
    if (curl_multi_add_handle(multi, t->easy) != CURLM_OK) {
      fail_before_start(t, "curl_multi_add_handle failed");
      return;
    }
    ++active;
    update_cache_size();
  }

  void fail_before_start(Transfer* t, const char* why) {
    UpstreamResult r = inline_result(Kind::kConnectError, why);
    r.elapsed_ms = elapsed_ms_since(t->submitted);
    Callback done = std::move(t->done);
    release(t);
    in_flight.fetch_sub(1);
    finish(done, std::move(r));
  }

  // Returns why the request cannot be sent, or nullptr when the handle is ready.
  const char* configure(Transfer* t) {
    const UpstreamRequest& req = t->request;
    if (!policy::is_token(req.method)) return "invalid method";

    bool has_accept = false;
    bool has_content_type = false;
    std::string line;
    for (const auto& [name, value] : req.headers.fields()) {
      // Header injection guard (DESIGN §8): libcurl would send CR/LF inside a value verbatim.
      if (!policy::is_token(name) || policy::has_line_break_or_nul(value)) return "invalid header";
      if (is_owned_request_field(name)) continue;
      has_accept = has_accept || policy::header_name_equals(name, "Accept");
      has_content_type = has_content_type || policy::header_name_equals(name, "Content-Type");
      line.assign(name);
      // "Name:" with nothing after it tells libcurl to remove the header; "Name;" sends it empty.
      if (http1::trim_ows(value).empty()) {
        line += ';';
      } else {
        line += ": ";
        line += value;
      }
      t->headers = curl_slist_append(t->headers, line.c_str());
      if (t->headers == nullptr) return "out of memory";
    }
    // libcurl adds "Expect: 100-continue" for large bodies and then stalls up to 1 s on
    // upstreams that ignore it; it adds "Accept: */*" to every request and a form Content-Type
    // to every POST. A proxy forwards only what the sender sent.
    t->headers = curl_slist_append(t->headers, "Expect:");
    if (!has_accept) t->headers = curl_slist_append(t->headers, "Accept:");
    if (!has_content_type) t->headers = curl_slist_append(t->headers, "Content-Type:");
    if (t->headers == nullptr) return "out of memory";

    CURL* e = t->easy;
    // Reset clears every option a previous transfer left (NOBODY, CUSTOMREQUEST, POST) but keeps
    // the handle's caches; the connections themselves live in the multi handle's pool.
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error_buffer);
    curl_easy_setopt(e, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    // An empty string disables http_proxy/HTTPS_PROXY/NO_PROXY from the environment.
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
    long total = std::max(1, req.timeout_ms);
    // A trigger stored with a longer timeout (by `apply`, SQL, or before the ingress timeouts
    // were lowered) must not outlive the ingress deadline: see ForwarderOptions::max_timeout_ms.
    if (options.max_timeout_ms > 0) total = std::min<long>(total, options.max_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     std::min<long>(std::max(1, options.connect_timeout_ms), total));
    // Closing idle connections before the upstream's own keep-alive timeout avoids racing its
    // close; libcurl would otherwise replay the request on the dead reused connection.
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, static_cast<long>(options.max_connection_age_s));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    // Aborts early when Content-Length already announces too much; on_body covers the rest.
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
                     static_cast<curl_off_t>(options.max_response_bytes));
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, &on_close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, this);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, &on_prereq);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, t);
    t->idempotent = is_idempotent(req.method);

    if (req.method == "HEAD") {
      // CUSTOMREQUEST "HEAD" would make libcurl wait for a body that never comes.
      curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (req.method == "GET" && req.body.empty()) {
      curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
      // POSTFIELDS does not copy: the body lives in the Transfer until the transfer ends.
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, req.body.data());
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
      if (req.method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    return nullptr;
  }

  static curl_socket_t on_open_socket(void* clientp, curlsocktype purpose, curl_sockaddr* address) {
    auto* t = static_cast<Transfer*>(clientp);
    if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
    // SSRF guard at connect time, on the address libcurl actually resolved: checking the URL's
    // host text misses 2130706433, 0x7f.1, IPv4-mapped IPv6 and DNS rebinding.
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw = nullptr;
    if (address->family == AF_INET) {
      raw = &reinterpret_cast<const sockaddr_in*>(&address->addr)->sin_addr;
    } else if (address->family == AF_INET6) {
      raw = &reinterpret_cast<const sockaddr_in6*>(&address->addr)->sin6_addr;
    } else {
      t->denied = true;
      return CURL_SOCKET_BAD;
    }
    if (inet_ntop(address->family, raw, text, sizeof text) == nullptr) return CURL_SOCKET_BAD;
    auto ip = policy::IpAddress::parse(text);
    if (!ip || t->impl->deny.contains(*ip)) {
      t->denied = true;
      return CURL_SOCKET_BAD;
    }
    const int fd = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    if (fd >= 0) t->impl->sockets.erase(fd);  // a new socket starts unregistered
    return fd;
  }

  // libcurl silently resends a request when a reused connection dies before any response byte
  // (Curl_retry_request), even after the whole POST went out. A webhook must not be delivered
  // twice (nginx: non-idempotent requests are not passed to the next server once sent), so a
  // second attempt of a non-idempotent request is aborted instead.
  static int on_prereq(void* clientp, char*, char*, int, int) {
    auto* t = static_cast<Transfer*>(clientp);
    if (++t->attempts > 1 && !t->idempotent) {
      t->replay_refused = true;
      return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
  }

  static std::size_t on_header(char* data, std::size_t size, std::size_t count, void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    const std::size_t n = size * count;
    std::string_view line(data, n);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);

    if (line.size() >= 5 && line.substr(0, 5) == "HTTP/") {
      // A new status line (after 1xx interim responses): keep only the final response's fields.
      t->result.headers = policy::HeaderList{};
      t->connection_tokens.clear();
      t->in_header_block = true;
      return n;
    }
    if (line.empty()) {
      t->in_header_block = false;
      return n;
    }
    // Lines after the final header block are chunked trailers: not relayed.
    if (!t->in_header_block) return n;

    t->header_bytes += n;
    if (t->header_bytes > kMaxResponseHeaderBytes) {
      t->headers_too_large = true;
      return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    if (line.front() == ' ' || line.front() == '\t') {
      // obs-fold (RFC 9112 §5.2): a proxy may reject it, and doing so keeps folded text from
      // being smuggled past our value checks.
      t->headers_malformed = true;
      return 0;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      t->headers_malformed = true;
      return 0;
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = http1::trim_ows(line.substr(colon + 1));
    if (!policy::is_token(name) || policy::has_line_break_or_nul(value)) {
      t->headers_malformed = true;
      return 0;
    }
    if (++t->header_fields > kMaxResponseHeaderFields) {
      t->headers_too_large = true;
      return 0;
    }
    if (policy::header_name_equals(name, "Connection")) {
      // RFC 9110 §7.6.1: fields named in Connection are hop-by-hop too.
      std::string_view rest = value;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        auto token = http1::trim_ows(rest.substr(0, comma));
        if (!token.empty()) t->connection_tokens.emplace_back(token);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      }
    }
    if (is_hop_by_hop(name) || policy::header_name_equals(name, "Content-Length")) return n;
    t->result.headers.add(std::string(name), std::string(value));
    return n;
  }

  static std::size_t on_body(char* data, std::size_t size, std::size_t count, void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    const std::size_t n = size * count;
    const auto limit =
        static_cast<std::size_t>(std::max<std::int64_t>(0, t->impl->options.max_response_bytes));
    if (t->result.body.size() + n > limit) {
      t->body_too_large = true;
      return 0;  // CURLE_WRITE_ERROR
    }
    t->result.body.append(data, n);
    return n;
  }

  void complete(CURL* easy, CURLcode code) {
    Transfer* t = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &t);
    curl_multi_remove_handle(multi, easy);
    --active;
    update_cache_size();

    UpstreamResult result = std::move(t->result);
    result.elapsed_ms = elapsed_ms_since(t->submitted);
    if (code == CURLE_OK) {
      long status = 0;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
      result.kind = Kind::kOk;
      result.status = static_cast<int>(status);
      for (const auto& token : t->connection_tokens) result.headers.remove(token);
    } else {
      result.kind = classify(t, code);
      result.status = 0;
      result.headers = policy::HeaderList{};
      result.body.clear();
      result.error = describe(t, code);
    }
    Callback done = std::move(t->done);
    release(t);
    in_flight.fetch_sub(1);
    finish(done, std::move(result));
  }

  static Kind classify(const Transfer* t, CURLcode code) {
    if (t->body_too_large || code == CURLE_FILESIZE_EXCEEDED) return Kind::kTooLarge;
    if (code == CURLE_OPERATION_TIMEDOUT) return Kind::kTimeout;
    if (t->denied && code == CURLE_COULDNT_CONNECT) return Kind::kDenied;
    return Kind::kConnectError;
  }

  static std::string describe(const Transfer* t, CURLcode code) {
    if (t->headers_too_large) return "upstream headers too large";
    if (t->headers_malformed) return "malformed upstream header";
    if (t->body_too_large || code == CURLE_FILESIZE_EXCEEDED) return "upstream body too large";
    if (t->denied && code == CURLE_COULDNT_CONNECT) return "upstream address denied";
    if (t->replay_refused) return "upstream closed a reused connection; request not retried";
    std::string msg = curl_easy_strerror(code);
    if (t->error_buffer[0] != '\0') {
      msg += ": ";
      msg += t->error_buffer;
    }
    return msg;
  }

  void shutdown_loop() {
    client.reset();  // closes its pooled connections
    for (auto& t : transfers) curl_easy_cleanup(t->easy);
    transfers.clear();
    free_list.clear();
    if (multi != nullptr) curl_multi_cleanup(multi);
    multi = nullptr;
    if (epoll_fd >= 0) close(epoll_fd);
    epoll_fd = -1;
  }

  void start() {
    std::lock_guard lock(mutex);
    if (started || stopping) return;
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0) throw std::runtime_error("epoll_create1 failed");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wake_fd;
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &ev);
    multi = curl_multi_init();
    if (multi == nullptr) throw std::runtime_error("curl_multi_init failed");
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &Impl::on_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &Impl::on_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
    update_cache_size();
    client = std::make_unique<http1::Client>(
        options, deny,
        http1::Client::Loop{epoll_fd, [this](std::function<void()> task) { post(std::move(task)); },
                            [this](Callback& done, UpstreamResult result) {
                              in_flight.fetch_sub(1);
                              finish(done, std::move(result));
                            }});
    // No CURLMOPT_MAX_TOTAL_CONNECTIONS: transfers over that cap wait inside libcurl for a free
    // connection, so one hung upstream holding them all would stall every other trigger.
    // max_in_flight is the bound instead.
    started = true;
    thread = std::thread([this] { run(); });
    // Named from here, so the name is there once start() returns.
    pthread_setname_np(thread.native_handle(), "hg-forwarder");
  }

  // Queues a request the Forwarder has already admitted (max_in_flight).
  void submit(UpstreamRequest request, Callback done) {
    const auto submitted = Clock::now();
    {
      std::lock_guard lock(mutex);
      if (!stopping) {
        in_flight.fetch_add(1);
        const bool was_empty = inbox.empty();
        inbox.push_back({std::move(request), std::move(done), submitted});
        // One wakeup per batch is enough: the loop drains the whole inbox.
        if (was_empty && started) wake();
        return;
      }
    }
    finish(done, inline_result(Kind::kShuttingDown, "forwarder stopping"));
  }

  void stop() {
    std::lock_guard join_lock(join_mutex);
    std::vector<Pending> orphans;
    {
      std::lock_guard lock(mutex);
      stopping = true;
      if (started) {
        wake();
      } else {
        orphans.swap(inbox);
      }
    }
    for (auto& p : orphans) {
      in_flight.fetch_sub(1);
      finish(p.done, inline_result(Kind::kShuttingDown, "forwarder stopped"));
    }
    // stop() from a callback runs on the loop thread itself: it cannot join itself; the loop
    // exits on its own once drained and the destructor (on another thread) joins.
    if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) {
      thread.join();
      shutdown_loop();
    }
  }
};

Forwarder::Forwarder(ForwarderOptions options)
    : max_in_flight_(static_cast<std::size_t>(std::max(0, options.max_in_flight))) {
  init_curl_once();
  const int loops = std::max(1, options.threads);
  // Each loop pools its share of the idle connections, at least one.
  options.max_connections = std::max(1, options.max_connections / loops);
  for (int i = 0; i < loops; ++i) loops_.push_back(std::make_unique<Impl>(options));
}

Forwarder::~Forwarder() { stop(); }

void Forwarder::start() {
  for (auto& loop : loops_) loop->start();
}

void Forwarder::submit(UpstreamRequest request, Callback done) {
  // Before the bound: while stop() waits for the requests in flight, the forwarder is full as
  // well as stopping, and stopping is what the caller should hear.
  if (stopping_.load(std::memory_order_acquire)) {
    return Impl::finish(done, Impl::inline_result(Kind::kShuttingDown, "forwarder stopping"));
  }
  Impl& loop = *loops_[next_loop_.fetch_add(1, std::memory_order_relaxed) % loops_.size()];
  // The bound is over all loops; concurrent submits may each pass it before any is counted,
  // so it can be exceeded by at most the number of submitting threads.
  if (in_flight() >= max_in_flight_) {
    return Impl::finish(done, Impl::inline_result(Kind::kBusy, "too many requests in flight"));
  }
  loop.submit(std::move(request), std::move(done));
}

void Forwarder::stop() {
  stopping_.store(true, std::memory_order_release);
  for (auto& loop : loops_) loop->stop();
}

std::size_t Forwarder::in_flight() const {
  std::size_t total = 0;
  for (const auto& loop : loops_) total += loop->in_flight.load();
  return total;
}

}  // namespace hookguard::gateway
