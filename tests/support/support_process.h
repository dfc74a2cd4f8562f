#pragma once

// What the tests of the real clustergov-support binary share: the binary as a child process, and a
// fixture with what it calls (in-process clusters and enterprises services on SQLite files, one
// real redis-server) and the member enterprises of clusters/hohhot-dairy whose tokens apply.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "clustergov/support/v1/support.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/support/in_process.h"
#include "tests/support/test_support.h"

namespace clustergov::testing {

inline constexpr int kSupportYear = 2025;
inline constexpr char kHohhot[] = "150100";
inline constexpr char kDairy[] = "clusters/hohhot-dairy";

// The name of the Hohhot pool of `kind` for kSupportYear.
std::string HohhotPool(support::v1::ResourceKind kind);

support::v1::Item Qty(support::v1::ResourceKind kind, int64_t quantity);

// One clustergov-support child process on 127.0.0.1:`port`, its store `dir`/support.db.
class SupportProcess {
 public:
  // `extra` flags come last (the last of a repeated flag wins: e.g. another --db).
  SupportProcess(const TempDir& dir, int port, int redis_port, int clusters_port, int enterprises_port,
                 const std::vector<std::string>& extra = {});

  // Polls a real RPC until it answers; false when the process exits first or after 60 s.
  bool WaitServing(const std::string& token);

  int port() const { return port_; }
  Process& process() { return *process_; }
  std::string Describe() const;

 private:
  std::unique_ptr<Process> process_;
  std::string argv_;
  int port_ = 0;
};

// Clusters and enterprises in process, Redis, and kMembers member enterprises of kDairy.
class SupportBackendsTest : public ::testing::Test {
 public:
  static constexpr int kMembers = 6;

 protected:
  void SetUp() override;
  void TearDown() override;

  // A support process against these backends; `extra` as for SupportProcess.
  std::unique_ptr<SupportProcess> NewSupport(int port, const std::vector<std::string>& extra = {});

  RedisServer redis_;
  TempDir dir_;
  ClustersServer clusters_;
  EnterprisesServer enterprises_;
  std::vector<std::string> enterprise_tokens_;  // one per member enterprise

  const std::string industry_it_ = MakeToken("wang.li", "departments/industry_it", {"government"});
  const std::string energy_ = MakeToken("zhao.min", "departments/energy", {"government"});
  const std::string development_reform_ = MakeToken("liu.fang", "departments/development_reform", {"government"});
  const std::string auditor_ = MakeToken("audit.one", "agencies/audit", {"auditor"});
};

}  // namespace clustergov::testing
