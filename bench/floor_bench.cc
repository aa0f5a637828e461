// The floor under any gateway built on this stack: the same Pistache endpoint hookguard's
// ingress uses (same options, same thread count), doing less and less of hookguard's work.
//
//   --mode inline   answers 200 from the reactor thread at once: Pistache's own cost per request
//   --mode forward  hands each request to gateway::Forwarder (libcurl multi on its event loop,
//                   pooled keep-alive connections) and relays the upstream's answer from the
//                   forwarder thread, as hookguard does: Pistache + libcurl + the thread hop,
//                   with no policy, no Redis and no audit row
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
#include "http/listen_address.h"

namespace {

using namespace Pistache;
using hookguard::gateway::Forwarder;
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
    // As IngressServer does: Pistache would otherwise answer HTTP/1.1 clients that sent no
    // Connection header with "Connection: Close" and close every connection.
    response.headers().remove<Http::Header::Connection>();
    response.headers().add<Http::Header::Connection>(Http::ConnectionControl::KeepAlive);
    if (forwarder_ == nullptr) {
      response.send(Http::Code::Ok, "{\"ok\":true}", MIME(Application, Json));
      return;
    }
    UpstreamRequest up;
    up.method = "POST";
    up.url = upstream_;
    up.headers.add("Content-Type", "application/json");
    up.body = req.body();
    up.timeout_ms = 8000;
    auto writer = std::make_shared<Http::ResponseWriter>(std::move(response));
    forwarder_->submit(std::move(up), [writer](UpstreamResult r) {
      if (r.kind == UpstreamResult::Kind::kOk) {
        writer->send(static_cast<Http::Code>(r.status), r.body, MIME(Application, Json));
      } else {
        writer->send(Http::Code::Bad_Gateway, "{\"error\":\"upstream_error\"}",
                     MIME(Application, Json));
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
    forwarder = std::make_unique<Forwarder>(hookguard::gateway::ForwarderOptions{});
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
