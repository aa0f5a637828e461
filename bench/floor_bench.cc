// The floor under any gateway built on this stack: the same Pistache endpoint hookguard's
// ingress uses (same options, same thread count), doing less and less of hookguard's work.
//
//   --mode inline   answers 200 from the reactor thread at once: Pistache's own cost per request
//   --mode forward  hands each request to gateway::Forwarder (its HTTP/1.1 client on event
//                   loops as many as `hookguard serve` runs, pooled keep-alive connections) and
//                   relays the upstream's answer from the forwarder thread, as hookguard does:
//                   Pistache + the forwarder + the thread hop, with no policy, no Redis and no
//                   audit row
// Both answer through gateway::ReplyPath, as hookguard does.
//
// bench/run.sh drives it with wrk beside hookguard and the anchors, so the table shows how
// much of the gap to HAProxy is the stack itself and how much is hookguard's own work.
//
// usage: hookguard_floor_bench --port P [--threads N] [--mode inline|forward]
//                              [--upstream http://127.0.0.1:PORT/path]
// Runs until SIGINT/SIGTERM.
#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/config.h"
#include "gateway/forwarder.h"
#include "gateway/reply_path.h"
#include "http/listen_address.h"

namespace {

using namespace Pistache;
using hookguard::gateway::Forwarder;
using hookguard::gateway::ReplyPath;
using hookguard::gateway::UpstreamRequest;
using hookguard::gateway::UpstreamResult;

struct Args {
  int port = 0;
  int threads = 2;
  bool forward = false;
  std::string upstream;
};

class FloorHandler final : public Http::Handler {
 public:
  HTTP_PROTOTYPE(FloorHandler)

  FloorHandler(Forwarder* forwarder, std::string upstream)
      : forwarder_(forwarder), upstream_(std::move(upstream)) {}

  void onRequest(const Http::Request& req, Http::ResponseWriter response) override {
    // The answer goes back the way IngressServer sends it (gateway/reply_path).
    auto reply = ReplyPath::of(req, response, nullptr);
    static const hookguard::policy::HeaderList json{{"Content-Type", "application/json"}};
    if (forwarder_ == nullptr) {
      reply.send(200, json, "{\"ok\":true}");
      return;
    }
    UpstreamRequest up;
    up.method = "POST";
    up.url = upstream_;
    up.headers.add("Content-Type", "application/json");
    up.body = req.body();
    up.timeout_ms = 8000;
    forwarder_->submit(std::move(up), [reply = std::move(reply)](UpstreamResult r) {
      if (r.kind == UpstreamResult::Kind::kOk) {
        reply.send(r.status, json, r.body);
      } else {
        reply.send(502, json, "{\"error\":\"upstream_error\"}");
      }
    });
  }

 private:
  Forwarder* forwarder_;
  std::string upstream_;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "hookguard_floor_bench: %s\nusage: hookguard_floor_bench --port P [--threads N] "
               "[--mode inline|forward] [--upstream URL]\n",
               why);
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc) usage("missing value after an option");
    const std::string value = argv[++i];
    if (arg == "--port") {
      a.port = std::atoi(value.c_str());
    } else if (arg == "--threads") {
      a.threads = std::atoi(value.c_str());
    } else if (arg == "--mode") {
      if (value != "inline" && value != "forward") usage("--mode must be inline or forward");
      a.forward = value == "forward";
    } else if (arg == "--upstream") {
      a.upstream = value;
    } else {
      usage("unknown option");
    }
  }
  if (a.port <= 0 || a.port > 65535) usage("--port must be 1..65535");
  if (a.threads < 1 || a.threads > 64) usage("--threads must be 1..64");
  if (a.forward && a.upstream.empty()) usage("--mode forward needs --upstream");
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  // Blocked before any thread starts, so that only sigwait below sees them.
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<Forwarder> forwarder;
  if (args.forward) {
    hookguard::gateway::ForwarderOptions options;
    options.threads = hookguard::gateway::UpstreamConfig{}.threads;  // as `hookguard serve`
    forwarder = std::make_unique<Forwarder>(options);
    forwarder->start();
  }
  Http::Endpoint endpoint(Address(hookguard::http::listen_address_text("127.0.0.1", args.port)));
  // The options hookguard's IngressServer sets (gateway/ingress_server.cc), with its defaults.
  const hookguard::gateway::IngressConfig defaults;
  endpoint.init(Http::Endpoint::options()
                    .threads(args.threads)
                    .flags(Tcp::Options::ReuseAddr)
                    .maxRequestSize(static_cast<std::size_t>(defaults.max_body_bytes) + 16384)
                    .headerTimeout(std::chrono::milliseconds(defaults.header_timeout_ms))
                    .bodyTimeout(std::chrono::milliseconds(defaults.body_timeout_ms))
                    .keepaliveTimeout(std::chrono::milliseconds(defaults.keepalive_timeout_ms)));
  endpoint.setHandler(Http::make_handler<FloorHandler>(forwarder.get(), args.upstream));
  endpoint.serveThreaded();
  std::fprintf(stderr, "floor bench (%s) on 127.0.0.1:%d\n", args.forward ? "forward" : "inline",
               args.port);
  int sig = 0;
  sigwait(&signals, &sig);
  endpoint.shutdown();
  if (forwarder) forwarder->stop();
  return 0;
}
