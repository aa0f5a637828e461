// The Pistache listener in front of Ingress: copies each request out and sends the answer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "gateway/config.h"
#include "gateway/ingress.h"

namespace Pistache::Http {
class Endpoint;
}

namespace hookguard::gateway {

/// Listens on ingress.address:port with a plain Http::Handler (no Rest::Router: it races).
class IngressServer {
 public:
  IngressServer(const IngressConfig& config, std::shared_ptr<const Ingress> ingress,
                Metrics* metrics);
  ~IngressServer();
  IngressServer(const IngressServer&) = delete;
  IngressServer& operator=(const IngressServer&) = delete;

  /// Binds and starts serving on background threads; an error names the address.
  Result<void> start();
  /// The bound port (useful with port 0).
  std::uint16_t port() const;
  void stop();

 private:
  IngressConfig config_;
  std::shared_ptr<const Ingress> ingress_;
  Metrics* metrics_;
  std::unique_ptr<Pistache::Http::Endpoint> endpoint_;
};

}  // namespace hookguard::gateway
