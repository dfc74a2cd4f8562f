#include "tests/support/support_process.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clustergov/enterprises/v1/enterprises.grpc.pb.h"
#include "services/clusters/seed.h"
#include "services/support/support_domain.h"

namespace clustergov::testing {

namespace ev1 = ::clustergov::enterprises::v1;
namespace sv1 = ::clustergov::support::v1;

std::string HohhotPool(sv1::ResourceKind kind) {
  return support::SupportDomain::PoolName(kHohhot, kSupportYear, kind, "");
}

sv1::Item Qty(sv1::ResourceKind kind, int64_t quantity) {
  sv1::Item item;
  item.set_kind(kind);
  item.set_quantity(quantity);
  return item;
}

SupportProcess::SupportProcess(const TempDir& dir, int port, int redis_port, int clusters_port, int enterprises_port,
                               const std::vector<std::string>& extra) {
  static std::atomic<int> counter{0};
  std::vector<std::string> argv{"env", "-u", "CLUSTERGOV_AUTH_HS256_SECRET",
                                BinaryPath("services/support/clustergov-support"),
                                absl::StrCat("--listen=127.0.0.1:", port),
                                "--metrics_listen=off",
                                absl::StrCat("--redis=127.0.0.1:", redis_port),
                                absl::StrCat("--db=", dir.File("support.db")),
                                absl::StrCat("--auth_hs256_secret=", kTestSecret),
                                absl::StrCat("--clusters_addr=127.0.0.1:", clusters_port),
                                absl::StrCat("--enterprises_addr=127.0.0.1:", enterprises_port)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv_ = absl::StrJoin(argv, " ");
  process_ = std::make_unique<Process>(argv, dir.File(absl::StrCat("support-", counter++, ".log")));
  port_ = port;
}

bool SupportProcess::WaitServing(const std::string& token) {
  auto stub = sv1::SupportService::NewStub(Connect(port_));
  for (int i = 0; i < 600; ++i) {
    if (!process_->Running()) return false;
    sv1::SupportReferenceData out;
    if (Invoke(stub.get(), &sv1::SupportService::Stub::GetReferenceData, token, sv1::GetReferenceDataRequest(), &out,
               500)
            .ok()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::string SupportProcess::Describe() const {
  return absl::StrCat("command: ", argv_, "\nlog:\n", process_->Log());
}

void SupportBackendsTest::SetUp() {
  auto seed = clusters::LoadSeedData("");
  ASSERT_TRUE(seed.ok()) << seed.status();
  auto cstarted = clusters_.Start(ServiceConfig("clusters", dir_.File("clusters.db"), redis_.port(), 0, 8), *seed);
  ASSERT_TRUE(cstarted.ok()) << cstarted;
  auto estarted = enterprises_.Start(ServiceConfig("enterprises", dir_.File("enterprises.db"), redis_.port(), 0, 8),
                                     clusters_.address(), &*seed);
  ASSERT_TRUE(estarted.ok()) << estarted.status();
  auto estub = ev1::EnterprisesService::NewStub(
      grpc::CreateChannel(enterprises_.address(), grpc::InsecureChannelCredentials()));
  for (int i = 0; i < kMembers; ++i) {
    const std::string uscc = Uscc(100 + i);
    ev1::RegisterEnterpriseRequest reg;
    auto* e = reg.mutable_enterprise();
    e->set_uscc(uscc);
    e->set_legal_name_zh(absl::StrCat("乳业成员企业", i));
    e->set_region(kHohhot);
    e->set_industry("dairy");
    e->set_size_class(ev1::SMALL);
    e->set_employees(100);
    ev1::Enterprise registered;
    grpc::Status s = Invoke(estub.get(), &ev1::EnterprisesService::Stub::RegisterEnterprise, industry_it_, reg,
                            &registered);
    ASSERT_TRUE(s.ok()) << testing::Describe(s);
    ev1::JoinClusterRequest join;
    join.set_parent("enterprises/" + uscc);
    join.mutable_membership()->set_cluster(kDairy);
    join.mutable_membership()->set_role(ev1::MEMBER);
    ev1::Membership joined;
    s = Invoke(estub.get(), &ev1::EnterprisesService::Stub::JoinCluster, industry_it_, join, &joined);
    ASSERT_TRUE(s.ok()) << testing::Describe(s);
    enterprise_tokens_.push_back(MakeToken("user-" + uscc, "enterprises/" + uscc, {"enterprise"}));
  }
}

void SupportBackendsTest::TearDown() {
  enterprises_.Stop();
  clusters_.Stop();
}

std::unique_ptr<SupportProcess> SupportBackendsTest::NewSupport(int port, const std::vector<std::string>& extra) {
  return std::make_unique<SupportProcess>(dir_, port, redis_.port(), clusters_.port(), enterprises_.port(), extra);
}

}  // namespace clustergov::testing
