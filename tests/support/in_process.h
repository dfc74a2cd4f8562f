#pragma once

// The services in the test's own process, on loopback ports chosen by the OS, each with its own
// runtime (store file, Redis client, auth) exactly as main() wires it: the one way tests bring up
// clusters, enterprises, support and talent as real gRPC servers. Start() returns the first error;
// Stop() shuts the server down and releases everything in reverse order of construction.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clustergov/clusters/v1/clusters.pb.h"
#include "common/server/config.h"
#include "common/server/runtime.h"
#include "common/indicators/indicator_source.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"

namespace clustergov::clusters {
class ClusterDirectory;
class ClustersDomain;
class ClustersServiceImpl;
class EvaluationDomain;
struct ClustersGraph;
}  // namespace clustergov::clusters
namespace clustergov::enterprises {
class EnterpriseDirectory;
class EnterprisesDomain;
class EnterprisesServiceImpl;
}  // namespace clustergov::enterprises
namespace clustergov::support {
class SupportDomain;
class SupportServiceImpl;
}  // namespace clustergov::support
namespace clustergov::talent {
class TalentDomain;
class TalentServiceImpl;
}  // namespace clustergov::talent

namespace clustergov::testing {

// A service's configuration for tests: 127.0.0.1:`port` (0: any), no metrics port (registries are
// read directly), a small worker pool, Redis on `redis_port` with a short back-off, the store at
// `db_path` without fsync, the test HS256 secret.
server::CommonConfig ServiceConfig(const std::string& service, const std::string& db_path, int redis_port,
                                   int port = 0, int worker_threads = 4);

// Field names of the google.rpc.BadRequest in a status's details.
std::vector<std::string> FieldsOf(const grpc::Status& status);
// "<code> <message>", for failure messages.
std::string Describe(const grpc::Status& status);

// A valid credit code of an enterprise in Hohhot: "91150100MA0" + `n` in 6 digits + the check character.
std::string Uscc(int n);

// One unary call on `stub` as the bearer of `token` (none when empty), with a deadline of
// `timeout_ms` (10 s).
template <typename S, typename Req, typename Resp>
grpc::Status Invoke(S* stub, grpc::Status (S::*method)(grpc::ClientContext*, const Req&, Resp*),
                    const std::string& token, const Req& req, Resp* resp, int timeout_ms = 10000) {
  grpc::ClientContext ctx;
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  ctx.AddMetadata("x-request-id", "test-call");
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  return (stub->*method)(&ctx, req, resp);
}

// Waits until every event `publisher` committed so far is published (its outbox holds no unsent
// event) and the consumer group `group` has read and acknowledged all of its stream
// (DEADLINE_EXCEEDED after 20 s).
absl::Status WaitForConsumerGroup(server::Runtime& publisher, const std::string& group);

class ClustersServer {
 public:
  ClustersServer();
  ~ClustersServer();
  // Loads `seed` first unless `load_seed` is false (the key tasks always come from it). Snapshots
  // for evaluations are gathered from `sources`.
  absl::Status Start(const server::CommonConfig& config, const clusters::v1::SeedData& seed, bool load_seed = true,
                     std::vector<std::unique_ptr<indicators::IndicatorSource>> sources = {});
  void Stop();
  bool running() const { return runtime_ != nullptr; }
  int port() const { return runtime_->port(); }
  std::string address() const;
  server::Runtime& runtime() { return *runtime_; }
  clusters::ClustersDomain& domain();
  // What the promotion service does when it designates `org` ("promotionOrgs/{id}") to `cluster`
  // ("clusters/{id}"): a PromotionOrgDesignated event, newer than any before, on its stream.
  // Returns once this service's record shows it (DEADLINE_EXCEEDED after 20 s).
  absl::Status DesignatePromotionOrg(const std::string& cluster, const std::string& org);
  clusters::EvaluationDomain& evaluation();

 private:
  std::unique_ptr<server::Runtime> runtime_;
  std::unique_ptr<clusters::ClustersGraph> graph_;
};

class EnterprisesServer {
 public:
  EnterprisesServer();
  ~EnterprisesServer();
  // Calls the clusters service at `clusters_address`; registers the seed's lead enterprises when
  // `seed` is given and returns how many it created.
  absl::StatusOr<int> Start(const server::CommonConfig& config, const std::string& clusters_address,
                            const clusters::v1::SeedData* seed);
  void Stop();
  bool running() const { return runtime_ != nullptr; }
  int port() const { return runtime_->port(); }
  std::string address() const;
  server::Runtime& runtime() { return *runtime_; }
  enterprises::EnterprisesDomain& domain() { return *domain_; }

 private:
  std::unique_ptr<server::Runtime> runtime_;
  std::unique_ptr<clusters::ClusterDirectory> directory_;
  std::unique_ptr<enterprises::EnterprisesDomain> domain_;
  std::unique_ptr<enterprises::EnterprisesServiceImpl> service_;
};

class SupportServer {
 public:
  SupportServer();
  ~SupportServer();
  absl::Status Start(const server::CommonConfig& config, const std::string& clusters_address,
                     const std::string& enterprises_address, absl::Duration reservation_lifetime);
  void Stop();
  bool running() const { return runtime_ != nullptr; }
  int port() const { return runtime_->port(); }
  std::string address() const;
  // Its cached view of the clusters service, as the domain uses it.
  clusters::ClusterDirectory& cluster_directory() { return *clusters_; }
  server::Runtime& runtime() { return *runtime_; }
  support::SupportDomain& domain() { return *domain_; }

 private:
  std::unique_ptr<server::Runtime> runtime_;
  std::unique_ptr<clusters::ClusterDirectory> clusters_;
  std::unique_ptr<enterprises::EnterpriseDirectory> enterprises_;
  std::unique_ptr<support::SupportDomain> domain_;
  std::unique_ptr<support::SupportServiceImpl> service_;
};

class TalentServer {
 public:
  TalentServer();
  ~TalentServer();
  // Checks memberships with the enterprises service at `enterprises_address`.
  absl::Status Start(const server::CommonConfig& config, const std::string& enterprises_address);
  void Stop();
  bool running() const { return runtime_ != nullptr; }
  int port() const { return runtime_->port(); }
  std::string address() const;
  server::Runtime& runtime() { return *runtime_; }
  talent::TalentDomain& domain() { return *domain_; }

 private:
  std::unique_ptr<server::Runtime> runtime_;
  std::unique_ptr<enterprises::EnterpriseDirectory> enterprises_;
  std::unique_ptr<talent::TalentDomain> domain_;
  std::unique_ptr<talent::TalentServiceImpl> service_;
};

}  // namespace clustergov::testing
