#include "tests/support/in_process.h"
#include "tests/support/postgres.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "clustergov/events/v1/events.pb.h"
#include "common/refdata/uscc.h"
#include "common/store/outbox.h"
#include "common/server/client.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "services/clusters/client/cluster_directory.h"
#include "services/clusters/clusters_domain.h"
#include "services/clusters/clusters_graph.h"
#include "services/enterprises/client/enterprise_directory.h"
#include "services/enterprises/enterprise_repository.h"
#include "services/enterprises/enterprises_domain.h"
#include "services/enterprises/enterprises_service.h"
#include "services/support/support_domain.h"
#include "services/support/support_repository.h"
#include "services/support/support_service.h"
#include "services/talent/talent_domain.h"
#include "services/talent/talent_repository.h"
#include "services/talent/talent_service.h"
#include "tests/support/test_support.h"

namespace clustergov::testing {

namespace {
constexpr std::chrono::seconds kDirectoryTtl{60};
}  // namespace

server::CommonConfig ServiceConfig(const std::string& service, const std::string& db_path, int redis_port, int port,
                                   int worker_threads) {
  server::CommonConfig config;
  config.server.service_name = service;
  config.server.listen = absl::StrCat("127.0.0.1:", port);
  config.server.metrics_listen = "";
  config.server.worker_threads = worker_threads;
  config.server.drain_timeout = absl::Seconds(2);
  config.redis.port = redis_port;
  config.redis.retry_backoff = std::chrono::milliseconds(50);
  config.db.path = TestStoreLocation(db_path);
  config.db.synchronous_full = false;
  config.auth.hs256_secret = kTestSecret;
  config.page_token_secret = "page-token-secret-for-tests";
  return config;
}

std::vector<std::string> FieldsOf(const grpc::Status& status) {
  std::vector<std::string> fields;
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) return fields;
  for (const auto& any : details.details()) {
    google::rpc::BadRequest bad;
    if (any.type_url() == "type.googleapis.com/google.rpc.BadRequest" && bad.ParseFromString(any.value())) {
      for (const auto& v : bad.field_violations()) fields.push_back(v.field());
    }
  }
  return fields;
}

std::string Describe(const grpc::Status& status) {
  return absl::StrCat(status.error_code(), " ", status.error_message());
}

std::string Uscc(int n) {
  std::string first17 = absl::StrFormat("91150100MA0%06d", n);
  char check = refdata::UsccCheckCharacter(first17);
  EXPECT_NE(check, '\0') << first17;
  return first17 + std::string(1, check);
}

absl::Status WaitForConsumerGroup(server::Runtime& publisher, const std::string& group) {
  const std::string stream = server::Runtime::EventStream(publisher.config().server.service_name);
  cache::RedisClient& redis = *publisher.redis();
  auto field = [](const cache::RedisReply& map, const std::string& key) -> const cache::RedisReply* {
    for (size_t i = 0; i + 1 < map.elements.size(); i += 2) {
      if (map.elements[i].str == key) return &map.elements[i + 1];
    }
    return nullptr;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  auto unsent = [&]() -> int64_t {
    auto n = publisher.db().ReadResult<int64_t>([](store::Connection& c) -> absl::StatusOr<int64_t> {
      auto count = c.Prepare("SELECT COUNT(*) FROM outbox_events WHERE sent_micros IS NULL");
      if (!count.ok()) return count.status();
      auto row = count->Step();
      if (!row.ok()) return row.status();
      return *row ? count->Int(0) : 0;
    });
    return n.ok() ? *n : -1;
  };
  while (std::chrono::steady_clock::now() < deadline && unsent() != 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  while (std::chrono::steady_clock::now() < deadline) {
    auto info = redis.Command({"XINFO", "STREAM", stream});
    auto groups = redis.Command({"XINFO", "GROUPS", stream});
    const cache::RedisReply* last = info.ok() ? field(*info, "last-generated-id") : nullptr;
    for (const auto& g : groups.ok() ? groups->elements : std::vector<cache::RedisReply>()) {
      const cache::RedisReply* name = field(g, "name");
      const cache::RedisReply* delivered = field(g, "last-delivered-id");
      const cache::RedisReply* pending = field(g, "pending");
      if (name != nullptr && name->str == group && last != nullptr && delivered != nullptr && pending != nullptr &&
          delivered->str == last->str && pending->integer == 0) {
        return absl::OkStatus();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat(group, " did not catch up with ", stream));
}

// ------------------------------------------------------------------------------ clusters

ClustersServer::ClustersServer() = default;
ClustersServer::~ClustersServer() { Stop(); }

absl::Status ClustersServer::Start(const server::CommonConfig& config, const clusters::v1::SeedData& seed,
                                   bool load_seed,
                                   std::vector<std::unique_ptr<indicators::IndicatorSource>> sources) {
  auto rt = server::Runtime::Create(config);
  if (!rt.ok()) return rt.status();
  runtime_ = std::move(*rt);
  auto graph = clusters::BuildClustersGraph(*runtime_, seed, load_seed, std::move(sources));
  if (!graph.ok()) return graph.status();
  graph_ = std::make_unique<clusters::ClustersGraph>(std::move(*graph));
  return runtime_->Start(graph_->services());
}

void ClustersServer::Stop() {
  if (runtime_) runtime_->Shutdown();
  graph_.reset();
  runtime_.reset();  // closes the store
}

clusters::ClustersDomain& ClustersServer::domain() { return *graph_->domain; }
clusters::EvaluationDomain& ClustersServer::evaluation() { return *graph_->evaluation; }

std::string ClustersServer::address() const { return absl::StrCat("127.0.0.1:", port()); }

absl::Status ClustersServer::DesignatePromotionOrg(const std::string& cluster, const std::string& org) {
  static std::atomic<int64_t> sequence{1000000};  // after the promotion service's own changes here
  const int64_t n = sequence.fetch_add(1);
  events::v1::PromotionOrgDesignated designated;
  designated.set_designation(absl::StrCat("designations/", n));
  designated.set_promotion_org(org);
  designated.set_cluster(cluster);
  common::v1::Actor actor;
  actor.set_subject("test");
  const events::v1::Envelope envelope =
      store::MakeEnvelope("clustergov/promotion", designated.designation(), designated, actor, n);
  auto added = runtime_->redis()->Command({"XADD", server::Runtime::EventStream("promotion"), "*", "id",
                                           envelope.id(), "type", envelope.type(), "envelope",
                                           envelope.SerializeAsString()});
  if (!added.ok()) return added.status();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    auto shown = domain().LoadCached(cluster.substr(cluster.find('/') + 1));
    if (shown.ok() && shown->promotion_organization() == org) return absl::OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat(cluster, " does not show ", org));
}

// --------------------------------------------------------------------------- enterprises

EnterprisesServer::EnterprisesServer() = default;
EnterprisesServer::~EnterprisesServer() { Stop(); }

absl::StatusOr<int> EnterprisesServer::Start(const server::CommonConfig& config, const std::string& clusters_address,
                                             const clusters::v1::SeedData* seed) {
  auto rt = server::Runtime::Create(config);
  if (!rt.ok()) return rt.status();
  runtime_ = std::move(*rt);
  directory_ = std::make_unique<clusters::ClusterDirectory>(*runtime_, server::MakeChannel(clusters_address),
                                                            kDirectoryTtl);
  auto repo = enterprises::CreateEnterpriseRepository(&runtime_->db());
  if (!repo.ok()) return repo.status();
  domain_ = std::make_unique<enterprises::EnterprisesDomain>(std::move(*repo), runtime_->MakeCache("enterprises"),
                                                             directory_.get(), &runtime_->page_tokens());
  int created = 0;
  if (seed != nullptr) {
    auto seeded = domain_->Seed(*seed);
    if (!seeded.ok()) return seeded.status();
    created = *seeded;
  }
  service_ = std::make_unique<enterprises::EnterprisesServiceImpl>(domain_.get(), &runtime_->handler());
  runtime_->PublishEvents();
  if (auto s = runtime_->Start({service_.get()}); !s.ok()) return s;
  return created;
}

void EnterprisesServer::Stop() {
  if (runtime_) runtime_->Shutdown();
  service_.reset();
  domain_.reset();
  directory_.reset();
  runtime_.reset();
}

std::string EnterprisesServer::address() const { return absl::StrCat("127.0.0.1:", port()); }

// ------------------------------------------------------------------------------- support

SupportServer::SupportServer() = default;
SupportServer::~SupportServer() { Stop(); }

absl::Status SupportServer::Start(const server::CommonConfig& config, const std::string& clusters_address,
                                  const std::string& enterprises_address, absl::Duration reservation_lifetime) {
  auto rt = server::Runtime::Create(config);
  if (!rt.ok()) return rt.status();
  runtime_ = std::move(*rt);
  clusters_ = std::make_unique<clusters::ClusterDirectory>(*runtime_, server::MakeChannel(clusters_address),
                                                           kDirectoryTtl);
  enterprises_ = std::make_unique<enterprises::EnterpriseDirectory>(
      *runtime_, server::MakeChannel(enterprises_address), kDirectoryTtl);
  auto repo = support::CreateSupportRepository(&runtime_->db());
  if (!repo.ok()) return repo.status();
  domain_ = std::make_unique<support::SupportDomain>(std::move(*repo), runtime_->MakeCache("support"), clusters_.get(),
                                                     enterprises_.get(), &runtime_->page_tokens(),
                                                     reservation_lifetime);
  service_ = std::make_unique<support::SupportServiceImpl>(domain_.get(), &runtime_->handler());
  runtime_->PublishEvents();
  return runtime_->Start({service_.get()});
}

void SupportServer::Stop() {
  if (runtime_) runtime_->Shutdown();
  service_.reset();
  domain_.reset();
  enterprises_.reset();
  clusters_.reset();
  runtime_.reset();
}

std::string SupportServer::address() const { return absl::StrCat("127.0.0.1:", port()); }

// -------------------------------------------------------------------------------- talent

TalentServer::TalentServer() = default;
TalentServer::~TalentServer() { Stop(); }

absl::Status TalentServer::Start(const server::CommonConfig& config, const std::string& enterprises_address) {
  auto rt = server::Runtime::Create(config);
  if (!rt.ok()) return rt.status();
  runtime_ = std::move(*rt);
  enterprises_ = std::make_unique<enterprises::EnterpriseDirectory>(*runtime_, server::MakeChannel(enterprises_address),
                                                                    kDirectoryTtl);
  auto repo = talent::CreateTalentRepository(&runtime_->db());
  if (!repo.ok()) return repo.status();
  domain_ = std::make_unique<talent::TalentDomain>(std::move(*repo), enterprises_.get(), &runtime_->page_tokens());
  if (auto s = domain_->LoadIndex(); !s.ok()) return s;
  service_ = std::make_unique<talent::TalentServiceImpl>(domain_.get(), &runtime_->handler());
  runtime_->PublishEvents();
  return runtime_->Start({service_.get()});
}

void TalentServer::Stop() {
  if (runtime_) runtime_->Shutdown();
  service_.reset();
  domain_.reset();
  enterprises_.reset();
  runtime_.reset();
}

std::string TalentServer::address() const { return absl::StrCat("127.0.0.1:", port()); }

}  // namespace clustergov::testing
