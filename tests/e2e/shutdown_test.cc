// End-to-end shutdown of `hookguard serve`: SIGTERM ends the process promptly and cleanly even
// when one of its PostgreSQL sessions has stopped answering. Built with HOOKGUARD_SANITIZE, the
// exit code also covers LeakSanitizer's check at exit (GatewayProcess fails on a report).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/test_env.h"

namespace hookguard::testing {
namespace {

using Clock = std::chrono::steady_clock;

// The trigger listener's LISTEN session on the test database (application_name set by
// TriggerReloader through dsn_with_defaults).
constexpr const char* kListenSessionWhere =
    " FROM pg_stat_activity WHERE datname = current_database()"
    " AND application_name = 'hookguard-triggers' AND query LIKE 'LISTEN%'";

// One PostgreSQL backend process stopped with SIGSTOP while the object lives: a session that
// hangs, while the server and every other session (of this test or any other) keep answering.
class StoppedBackend {
 public:
  explicit StoppedBackend(pid_t pid) : pid_(pid) {
    stopped_ = kill(pid_, SIGSTOP) == 0;
    if (!stopped_) error_ = std::strerror(errno);
  }
  ~StoppedBackend() { resume(); }
  StoppedBackend(const StoppedBackend&) = delete;
  StoppedBackend& operator=(const StoppedBackend&) = delete;

  bool stopped() const { return stopped_; }
  const std::string& error() const { return error_; }
  void resume() {
    if (stopped_) kill(pid_, SIGCONT);
    stopped_ = false;
  }

 private:
  pid_t pid_;
  bool stopped_ = false;
  std::string error_;
};

class GatewayShutdown : public ::testing::Test {
 protected:
  PgTestDb db_;
};

// Verifies that SIGTERM does not wait on the trigger listener's session when that session
// hangs: the listener ends it without a last round trip (the UNLISTEN that libpqxx's receiver
// would send), so its thread exits within a poll instead of being cut after the stop grace, and
// the process exits 0. A cut call used to leak a PGresult inside libpqxx as well, which a
// sanitizer build reports at exit.
TEST_F(GatewayShutdown, SigtermWhileTheTriggerListenerSessionHangsNeedsNoCut) {
  GatewayProcess gateway(db_.dsn());
  ASSERT_TRUE(gateway.start()) << gateway.log();
  ASSERT_TRUE(wait_for_value(db_.dsn(), std::string("SELECT count(*)") + kListenSessionWhere, "1"))
      << "the trigger listener never issued its LISTEN";
  const auto pid =
      std::stol(query_value(db_.dsn(), std::string("SELECT pid") + kListenSessionWhere));

  int exit_code = -2;
  long exit_ms = -1;
  {
    StoppedBackend hung(static_cast<pid_t>(pid));
    ASSERT_TRUE(hung.stopped()) << "could not stop backend " << pid << ": " << hung.error();
    const auto start = Clock::now();
    gateway.signal(SIGTERM);
    exit_code = gateway.wait_exit(15000);
    exit_ms = static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
  }
  const std::string log = gateway.log();
  EXPECT_EQ(exit_code, 0) << "exit after " << exit_ms << " ms\n" << log;
  EXPECT_EQ(log.find("cut its connection"), std::string::npos)
      << "the listener waited on its hung session until stop() cut it\n"
      << log;
}

}  // namespace
}  // namespace hookguard::testing
