// The clusters service end to end in-process: a real gRPC server on a loopback port, a real
// SQLite file, a real redis-server, and clients calling through the generated stub.

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "clustergov/clusters/v1/clusters.grpc.pb.h"
#include "common/server/runtime.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "services/clusters/cluster_repository.h"
#include "services/clusters/clusters_domain.h"
#include "services/clusters/clusters_graph.h"
#include "services/clusters/clusters_service.h"
#include "services/clusters/seed.h"
#include "tests/support/in_process.h"
#include "tests/support/test_support.h"

namespace clustergov::clusters {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using Stub = v1::ClustersService::Stub;
using common::v1::Tier;

using testing::FieldsOf;

double CounterValue(prometheus::Registry& registry, const std::string& name) {
  double total = 0;
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) total += m.counter.value;
  }
  return total;
}

class ClustersTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { redis_ = new testing::RedisServer(); }
  static void TearDownTestSuite() {
    delete redis_;
    redis_ = nullptr;
  }

  void SetUp() override {
    redis_->Start();
    redis_->Cli({"FLUSHALL"});
    dir_ = std::make_unique<testing::TempDir>();
    // The registry is read directly; process_test scrapes /metrics.
    server::CommonConfig config = testing::ServiceConfig("clusters", dir_->File("clusters.db"), redis_->port());
    auto rt = server::Runtime::Create(config);
    ASSERT_TRUE(rt.ok()) << rt.status();
    rt_ = std::move(*rt);
    auto seed = LoadSeedData("");
    ASSERT_TRUE(seed.ok()) << seed.status();
    auto graph = BuildClustersGraph(*rt_, *seed, /*load_seed=*/true, {});
    ASSERT_TRUE(graph.ok()) << graph.status();
    ASSERT_EQ(graph->seeded_clusters, 13);
    domain_ = std::move(graph->domain);
    evaluation_ = std::move(graph->evaluation);
    service_ = std::move(graph->service);
    auto started = rt_->Start({service_.get()});
    ASSERT_TRUE(started.ok()) << started;
    stub_ = v1::ClustersService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", rt_->port()), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (rt_) rt_->Shutdown();
    stub_.reset();
    rt_.reset();
    service_.reset();
    evaluation_.reset();
    domain_.reset();
  }

  template <typename Req, typename Resp>
  grpc::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), const std::string& token,
                    const Req& req, Resp* resp) {
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.AddMetadata("x-request-id", "test-call");
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return ((*stub_).*method)(&ctx, req, resp);
  }

  v1::Cluster Get(const std::string& id, grpc::Status* status = nullptr) {
    v1::GetClusterRequest req;
    req.set_name("clusters/" + id);
    v1::Cluster c;
    grpc::Status s = Call(&Stub::GetCluster, gov_, req, &c);
    if (status != nullptr) *status = s;
    return c;
  }

  v1::Cluster ValidCluster() {
    v1::Cluster c;
    c.set_display_name_zh("测试集群");
    c.set_display_name_en("Test cluster");
    c.set_industry("testing");
    c.set_target_tier(Tier::TIER_REGION);
    c.set_target_year(2027);
    c.add_core_regions("150100");
    c.add_supporting_regions("150200");
    c.add_lead_departments("industry_it");
    c.add_chain_segments("上游");
    c.add_chain_segments("下游");
    return c;
  }

  grpc::Status Create(const std::string& id, const v1::Cluster& cluster, v1::Cluster* out,
                      const std::string& request_id = "", const std::string& token = "") {
    v1::CreateClusterRequest req;
    req.set_cluster_id(id);
    *req.mutable_cluster() = cluster;
    req.set_request_id(request_id);
    return Call(&Stub::CreateCluster, token.empty() ? gov_ : token, req, out);
  }

  std::vector<v1::Cluster> ListAll(const std::string& filter, bool show_deleted = false) {
    std::vector<v1::Cluster> all;
    v1::ListClustersRequest req;
    req.set_filter(filter);
    req.set_page_size(4);
    req.set_show_deleted(show_deleted);
    for (int guard = 0; guard < 100; ++guard) {
      v1::ListClustersResponse resp;
      grpc::Status s = Call(&Stub::ListClusters, gov_, req, &resp);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok()) break;
      all.insert(all.end(), resp.clusters().begin(), resp.clusters().end());
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return all;
  }

  static testing::RedisServer* redis_;
  std::unique_ptr<testing::TempDir> dir_;
  std::unique_ptr<ClustersDomain> domain_;
  std::unique_ptr<EvaluationDomain> evaluation_;
  std::unique_ptr<ClustersServiceImpl> service_;
  std::unique_ptr<server::Runtime> rt_;
  std::unique_ptr<Stub> stub_;

  const std::string gov_ = testing::MakeToken("wang.li", "departments/industry_it", {"government"});
  const std::string energy_ = testing::MakeToken("zhao.min", "departments/energy", {"government"});
  const std::string hr_ = testing::MakeToken("sun.yu", "departments/hr_social_security", {"government"});
  const std::string enterprise_ =
      testing::MakeToken("ent.user", "enterprises/911501007014176160", {"enterprise"});
  const std::string auditor_ = testing::MakeToken("audit.one", "agencies/audit", {"auditor"});
  const std::string admin_ = testing::MakeToken("root", "departments/industry_it", {"admin"});
  const std::string service_token_ = testing::MakeToken("promotion-svc", "services/promotion", {"service"});
};

testing::RedisServer* ClustersTest::redis_ = nullptr;

// ------------------------------------------------------------------ seed facts

TEST_F(ClustersTest, SeedHasThe13ClustersWithThePlansTargetsAndDepartments) {
  auto all = ListAll("");
  ASSERT_EQ(all.size(), 13u);
  int world = 0, national = 0, region = 0;
  for (const auto& c : all) {
    EXPECT_EQ(c.tier(), Tier::TIER_NONE) << c.name();
    EXPECT_EQ(c.target_year(), 2027) << c.name();
    EXPECT_FALSE(c.lead_departments().empty()) << c.name();
    EXPECT_FALSE(c.core_regions().empty()) << c.name();
    world += c.target_tier() == Tier::TIER_WORLD_CLASS;
    national += c.target_tier() == Tier::TIER_NATIONAL;
    region += c.target_tier() == Tier::TIER_REGION;
  }
  EXPECT_EQ(world, 1);
  EXPECT_EQ(national, 3);
  EXPECT_EQ(region, 9);

  v1::Cluster dairy = Get("hohhot-dairy");
  EXPECT_EQ(dairy.display_name_zh(), "呼和浩特乳制品先进制造业集群");
  EXPECT_EQ(dairy.target_tier(), Tier::TIER_WORLD_CLASS);
  EXPECT_THAT(dairy.core_regions(), ElementsAre("150100"));
  EXPECT_THAT(dairy.lead_departments(), ElementsAre("industry_it"));
  std::vector<std::string> leads;
  for (const auto& e : dairy.lead_enterprises()) leads.push_back(e.name_zh());
  EXPECT_THAT(leads, UnorderedElementsAre("伊利", "蒙牛"));
  EXPECT_EQ(dairy.named_promotion_body(), "内蒙古奶业协会");
  EXPECT_THAT(dairy.innovation_platforms(), Contains(HasSubstr("国家乳业技术创新中心")));

  v1::Cluster coal = Get("ordos-coal-chemical");
  EXPECT_THAT(coal.lead_departments(), UnorderedElementsAre("development_reform", "industry_it"));
  EXPECT_EQ(coal.target_tier(), Tier::TIER_NATIONAL);
  v1::Cluster hydrogen = Get("hydrogen");
  EXPECT_THAT(hydrogen.lead_departments(), ElementsAre("energy"));
  v1::Cluster silicon = Get("hbo-silicon-pv");
  ASSERT_GE(silicon.chain_segments_size(), 3);
  EXPECT_EQ(silicon.chain_segments(0), "工业硅");
  EXPECT_THAT(silicon.core_regions(), UnorderedElementsAre("150100", "150200", "150600", "150900"));

  v1::ListKeyTasksResponse tasks;
  ASSERT_TRUE(Call(&Stub::ListKeyTasks, gov_, v1::ListKeyTasksRequest(), &tasks).ok());
  ASSERT_EQ(tasks.tasks_size(), 15);
  EXPECT_THAT(tasks.tasks(9).lead_departments(), UnorderedElementsAre("hr_social_security", "education"));
  EXPECT_EQ(tasks.tasks(0).group(), 1);
  EXPECT_EQ(tasks.tasks(14).group(), 5);

  v1::ReferenceData ref;
  ASSERT_TRUE(Call(&Stub::GetReferenceData, enterprise_, v1::GetReferenceDataRequest(), &ref).ok());
  EXPECT_EQ(ref.regions_size(), 12);
  EXPECT_EQ(ref.regions(0).code(), "150100");
  EXPECT_EQ(ref.regions(0).name_en(), "Hohhot");
  EXPECT_EQ(ref.key_tasks_size(), 15);
  EXPECT_GE(ref.departments_size(), 8);
}

TEST_F(ClustersTest, SeedIsIdempotent) {
  auto seed = LoadSeedData("");
  ASSERT_TRUE(seed.ok());
  auto again = domain_->Seed(*seed);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
  EXPECT_EQ(ListAll("").size(), 13u);
}

// ------------------------------------------------------------------ target progress and tiers

TEST_F(ClustersTest, TargetProgressFollowsDesignations) {
  v1::GetTargetProgressRequest req;
  req.set_target_year(2027);
  v1::TargetProgress before;
  ASSERT_TRUE(Call(&Stub::GetTargetProgress, gov_, req, &before).ok());
  ASSERT_EQ(before.tiers_size(), 3);
  EXPECT_EQ(before.tiers(0).tier(), Tier::TIER_WORLD_CLASS);
  EXPECT_EQ(before.tiers(0).goal_count(), 1);
  EXPECT_EQ(before.tiers(1).goal_count(), 3);
  EXPECT_EQ(before.tiers(2).goal_count(), 9);
  EXPECT_EQ(before.tiers(0).targeted_count(), 1);
  EXPECT_EQ(before.tiers(1).targeted_count(), 3);
  EXPECT_EQ(before.tiers(2).targeted_count(), 9);
  EXPECT_EQ(before.goal_total(), 13);
  EXPECT_EQ(before.achieved_total(), 0);
  EXPECT_THAT(before.tiers(0).behind(), ElementsAre("clusters/hohhot-dairy"));

  v1::DesignateTierRequest d;
  d.set_name("clusters/hohhot-dairy");
  d.set_tier(Tier::TIER_WORLD_CLASS);
  d.set_reason("列入国家先进制造业集群名单");
  v1::Cluster designated;
  ASSERT_TRUE(Call(&Stub::DesignateTier, gov_, d, &designated).ok());
  EXPECT_EQ(designated.tier(), Tier::TIER_WORLD_CLASS);

  v1::TargetProgress after;  // must not be served stale from the cache
  ASSERT_TRUE(Call(&Stub::GetTargetProgress, gov_, req, &after).ok());
  EXPECT_EQ(after.tiers(0).achieved_count(), 1);
  EXPECT_EQ(after.tiers(0).designated_count(), 1);
  EXPECT_TRUE(after.tiers(0).behind().empty());
  EXPECT_EQ(after.achieved_total(), 1);

  v1::GetTargetProgressRequest bad;
  bad.set_target_year(0);
  grpc::Status s = Call(&Stub::GetTargetProgress, gov_, bad, &after);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("target_year"));
}

TEST_F(ClustersTest, DesignateTierOnlyByALeadDepartmentWithAReasonAndKeepsHistory) {
  v1::DesignateTierRequest d;
  d.set_name("clusters/hydrogen");
  d.set_tier(Tier::TIER_REGION);
  d.set_reason("自治区级集群认定");
  v1::Cluster out;
  // Industry & IT is not a lead department of the hydrogen cluster (Energy Bureau is).
  EXPECT_EQ(Call(&Stub::DesignateTier, gov_, d, &out).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Call(&Stub::DesignateTier, admin_, d, &out).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Call(&Stub::DesignateTier, enterprise_, d, &out).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  v1::DesignateTierRequest no_reason = d;
  no_reason.clear_reason();
  grpc::Status s = Call(&Stub::DesignateTier, energy_, no_reason, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("reason"));
  v1::DesignateTierRequest bad_tier = d;
  bad_tier.set_tier(static_cast<Tier>(42));
  s = Call(&Stub::DesignateTier, energy_, bad_tier, &out);
  EXPECT_THAT(FieldsOf(s), ElementsAre("tier"));

  ASSERT_TRUE(Call(&Stub::DesignateTier, energy_, d, &out).ok());
  EXPECT_EQ(out.tier(), Tier::TIER_REGION);
  EXPECT_EQ(Call(&Stub::DesignateTier, energy_, d, &out).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  d.set_tier(Tier::TIER_NATIONAL);
  d.set_reason("入选国家级集群");
  ASSERT_TRUE(Call(&Stub::DesignateTier, energy_, d, &out).ok());

  v1::ListTierDesignationsRequest list;
  list.set_parent("clusters/hydrogen");
  list.set_page_size(1);
  v1::ListTierDesignationsResponse page1, page2;
  ASSERT_TRUE(Call(&Stub::ListTierDesignations, auditor_, list, &page1).ok());
  ASSERT_EQ(page1.designations_size(), 1);
  EXPECT_EQ(page1.designations(0).previous_tier(), Tier::TIER_NONE);
  EXPECT_EQ(page1.designations(0).tier(), Tier::TIER_REGION);
  EXPECT_EQ(page1.designations(0).reason(), "自治区级集群认定");
  EXPECT_EQ(page1.designations(0).actor().subject(), "zhao.min");
  EXPECT_EQ(page1.designations(0).actor().organization(), "departments/energy");
  ASSERT_FALSE(page1.next_page_token().empty());
  list.set_page_token(page1.next_page_token());
  ASSERT_TRUE(Call(&Stub::ListTierDesignations, auditor_, list, &page2).ok());
  ASSERT_EQ(page2.designations_size(), 1);
  EXPECT_EQ(page2.designations(0).previous_tier(), Tier::TIER_REGION);
  EXPECT_EQ(page2.designations(0).tier(), Tier::TIER_NATIONAL);
  EXPECT_TRUE(page2.next_page_token().empty());
}

// ------------------------------------------------------------------ CRUD

TEST_F(ClustersTest, CreateGetUpdateDeleteUndelete) {
  v1::Cluster input = ValidCluster();
  input.set_tier(Tier::TIER_WORLD_CLASS);  // output only: ignored
  input.set_promotion_organization("promotionOrgs/x");  // output only: ignored
  v1::Cluster created;
  ASSERT_TRUE(Create("test-cluster", input, &created).ok());
  EXPECT_EQ(created.name(), "clusters/test-cluster");
  EXPECT_EQ(created.tier(), Tier::TIER_NONE);
  EXPECT_TRUE(created.promotion_organization().empty());
  EXPECT_EQ(created.state(), v1::Cluster::ACTIVE);
  EXPECT_FALSE(created.etag().empty());
  EXPECT_TRUE(created.has_create_time());

  grpc::Status s;
  v1::Cluster got = Get("test-cluster", &s);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(got.etag(), created.etag());
  EXPECT_THAT(got.chain_segments(), ElementsAre("上游", "下游"));

  v1::Cluster again;
  EXPECT_EQ(Create("test-cluster", input, &again).error_code(), grpc::StatusCode::ALREADY_EXISTS);

  v1::UpdateClusterRequest update;
  update.mutable_cluster()->set_name("clusters/test-cluster");
  update.mutable_cluster()->set_display_name_en("Renamed");
  update.mutable_cluster()->set_etag(created.etag());
  update.mutable_update_mask()->add_paths("display_name_en");
  v1::Cluster updated;
  ASSERT_TRUE(Call(&Stub::UpdateCluster, gov_, update, &updated).ok());
  EXPECT_EQ(updated.display_name_en(), "Renamed");
  EXPECT_EQ(updated.display_name_zh(), "测试集群");  // untouched by the mask
  EXPECT_NE(updated.etag(), created.etag());
  EXPECT_EQ(Get("test-cluster").display_name_en(), "Renamed");

  v1::DeleteClusterRequest del;
  del.set_name("clusters/test-cluster");
  del.set_reason("duplicate entry");
  v1::Cluster deleted;
  ASSERT_TRUE(Call(&Stub::DeleteCluster, gov_, del, &deleted).ok());
  EXPECT_EQ(deleted.state(), v1::Cluster::DELETED);
  EXPECT_TRUE(deleted.has_delete_time());
  EXPECT_EQ(Get("test-cluster").state(), v1::Cluster::DELETED);
  EXPECT_EQ(ListAll("").size(), 13u);
  EXPECT_EQ(ListAll("", /*show_deleted=*/true).size(), 14u);
  EXPECT_EQ(Call(&Stub::DeleteCluster, gov_, del, &deleted).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  update.mutable_cluster()->clear_etag();
  EXPECT_EQ(Call(&Stub::UpdateCluster, gov_, update, &updated).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  v1::UndeleteClusterRequest undel;
  undel.set_name("clusters/test-cluster");
  v1::Cluster restored;
  ASSERT_TRUE(Call(&Stub::UndeleteCluster, gov_, undel, &restored).ok());
  EXPECT_EQ(restored.state(), v1::Cluster::ACTIVE);
  EXPECT_FALSE(restored.has_delete_time());
  EXPECT_EQ(ListAll("").size(), 14u);
  EXPECT_EQ(Call(&Stub::UndeleteCluster, gov_, undel, &restored).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  grpc::Status missing;
  Get("no-such-cluster", &missing);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ClustersTest, ValidationErrorsNameTheFieldAndWriteNothing) {
  struct Case {
    std::string id;
    std::function<void(v1::Cluster&)> mutate;
    std::string field;
  };
  std::vector<Case> cases = {
      {"Bad_Id", [](v1::Cluster&) {}, "cluster_id"},
      {"x", [](v1::Cluster&) {}, "cluster_id"},
      {"ok-id", [](v1::Cluster& c) { c.clear_display_name_zh(); }, "cluster.display_name_zh"},
      {"ok-id", [](v1::Cluster& c) { c.set_display_name_zh(std::string(201, 'a')); }, "cluster.display_name_zh"},
      {"ok-id", [](v1::Cluster& c) { c.set_industry("Dairy Products"); }, "cluster.industry"},
      {"ok-id", [](v1::Cluster& c) { c.set_target_tier(Tier::TIER_NONE); }, "cluster.target_tier"},
      {"ok-id", [](v1::Cluster& c) { c.set_target_year(1999); }, "cluster.target_year"},
      {"ok-id", [](v1::Cluster& c) { c.clear_core_regions(); }, "cluster.core_regions"},
      {"ok-id", [](v1::Cluster& c) { c.add_core_regions("110000"); }, "cluster.core_regions[1]"},
      {"ok-id", [](v1::Cluster& c) { c.add_core_regions("150100"); }, "cluster.core_regions[1]"},
      {"ok-id", [](v1::Cluster& c) { c.add_supporting_regions("150100"); }, "cluster.supporting_regions[1]"},
      {"ok-id", [](v1::Cluster& c) { c.add_lead_departments("ministry_of_magic"); }, "cluster.lead_departments[1]"},
      {"ok-id", [](v1::Cluster& c) { c.add_chain_segments(""); }, "cluster.chain_segments[2]"},
      {"ok-id", [](v1::Cluster& c) { c.add_lead_enterprises()->set_name_en("No Chinese name"); },
       "cluster.lead_enterprises[0].name_zh"},
      {"ok-id",
       [](v1::Cluster& c) {
         auto* e = c.add_lead_enterprises();
         e->set_name_zh("某企业");
         e->set_enterprise("enterprises/123");
       },
       "cluster.lead_enterprises[0].enterprise"},
  };
  for (const auto& tc : cases) {
    v1::Cluster c = ValidCluster();
    tc.mutate(c);
    v1::Cluster out;
    grpc::Status s = Create(tc.id, c, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << tc.field;
    EXPECT_THAT(FieldsOf(s), Contains(tc.field)) << s.error_message();
  }
  v1::Cluster out;
  v1::CreateClusterRequest bad_request_id;
  bad_request_id.set_cluster_id("ok-id");
  *bad_request_id.mutable_cluster() = ValidCluster();
  bad_request_id.set_request_id("has spaces; DROP TABLE");
  grpc::Status s = Call(&Stub::CreateCluster, gov_, bad_request_id, &out);
  EXPECT_THAT(FieldsOf(s), ElementsAre("request_id"));
  // Several problems are reported together.
  v1::Cluster many = ValidCluster();
  many.clear_display_name_zh();
  many.set_target_year(3000);
  s = Create("ok-id", many, &out);
  EXPECT_THAT(FieldsOf(s), UnorderedElementsAre("cluster.display_name_zh", "cluster.target_year"));
  // Nothing was written by any of them.
  grpc::Status missing;
  Get("ok-id", &missing);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ListAll("").size(), 13u);

  v1::GetClusterRequest bad_name;
  bad_name.set_name("cluster/hohhot-dairy");
  s = Call(&Stub::GetCluster, gov_, bad_name, &out);
  EXPECT_THAT(FieldsOf(s), ElementsAre("name"));

  v1::UpdateClusterRequest bad_mask;
  bad_mask.mutable_cluster()->set_name("clusters/hohhot-dairy");
  bad_mask.mutable_update_mask()->add_paths("tier");
  s = Call(&Stub::UpdateCluster, gov_, bad_mask, &out);
  EXPECT_THAT(FieldsOf(s), ElementsAre("update_mask"));
  v1::UpdateClusterRequest bad_value;
  bad_value.mutable_cluster()->set_name("clusters/hohhot-dairy");
  bad_value.mutable_update_mask()->add_paths("core_regions");
  bad_value.mutable_cluster()->add_core_regions("999999");
  s = Call(&Stub::UpdateCluster, gov_, bad_value, &out);
  EXPECT_THAT(FieldsOf(s), ElementsAre("cluster.core_regions[0]"));
  EXPECT_THAT(Get("hohhot-dairy").core_regions(), ElementsAre("150100"));
}

TEST_F(ClustersTest, OversizedMessageIsRejected) {
  v1::Cluster c = ValidCluster();
  c.set_development_focus(std::string(5 * 1024 * 1024, 'x'));
  v1::Cluster out;
  EXPECT_EQ(Create("huge", c, &out).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

// ------------------------------------------------------------------ authentication and authorization

TEST_F(ClustersTest, AuthenticationFailures) {
  v1::GetClusterRequest req;
  req.set_name("clusters/hohhot-dairy");
  v1::Cluster out;
  EXPECT_EQ(Call(&Stub::GetCluster, "", req, &out).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  std::string expired = testing::MakeToken("wang.li", "departments/industry_it", {"government"}, -600);
  EXPECT_EQ(Call(&Stub::GetCluster, expired, req, &out).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  std::string forged = testing::MakeToken("wang.li", "departments/industry_it", {"government"}, 3600,
                                          "another-secret-of-sufficient-length-0000");
  EXPECT_EQ(Call(&Stub::GetCluster, forged, req, &out).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Call(&Stub::GetCluster, "not.a.jwt", req, &out).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // Every authenticated role may read.
  for (const auto& token : {gov_, enterprise_, auditor_, admin_}) {
    EXPECT_TRUE(Call(&Stub::GetCluster, token, req, &out).ok());
  }
}

TEST_F(ClustersTest, WritesNeedTheRightRoleAndDepartment) {
  v1::Cluster out;
  EXPECT_EQ(Create("by-enterprise", ValidCluster(), &out, "", enterprise_).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Create("by-auditor", ValidCluster(), &out, "", auditor_).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // The Energy Bureau cannot register a cluster led by Industry & IT ...
  EXPECT_EQ(Create("by-energy", ValidCluster(), &out, "", energy_).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // ... nor update one.
  v1::UpdateClusterRequest update;
  update.mutable_cluster()->set_name("clusters/hohhot-dairy");
  update.mutable_cluster()->set_display_name_en("Hijacked");
  update.mutable_update_mask()->add_paths("display_name_en");
  EXPECT_EQ(Call(&Stub::UpdateCluster, energy_, update, &out).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Call(&Stub::UpdateCluster, enterprise_, update, &out).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  v1::DeleteClusterRequest del;
  del.set_name("clusters/hohhot-dairy");
  EXPECT_EQ(Call(&Stub::DeleteCluster, energy_, del, &out).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(Get("hohhot-dairy").display_name_en(), "Hijacked");
  // An admin may.
  EXPECT_TRUE(Create("by-admin", ValidCluster(), &out, "", admin_).ok());
  EXPECT_TRUE(Call(&Stub::UpdateCluster, admin_, update, &out).ok());

  common::v1::ListAuditEventsRequest audit;
  common::v1::ListAuditEventsResponse events;
  EXPECT_EQ(Call(&Stub::ListAuditEvents, enterprise_, audit, &events).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

// ------------------------------------------------------------------ etags, idempotency, audit

TEST_F(ClustersTest, StaleEtagIsAbortedAndChangesNothing) {
  v1::Cluster dairy = Get("hohhot-dairy");
  v1::UpdateClusterRequest first;
  first.mutable_cluster()->set_name(dairy.name());
  first.mutable_cluster()->set_display_name_en("First");
  first.mutable_cluster()->set_etag(dairy.etag());
  first.mutable_update_mask()->add_paths("display_name_en");
  v1::Cluster out;
  ASSERT_TRUE(Call(&Stub::UpdateCluster, gov_, first, &out).ok());
  v1::UpdateClusterRequest second = first;
  second.mutable_cluster()->set_display_name_en("Second");
  grpc::Status s = Call(&Stub::UpdateCluster, gov_, second, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(Get("hohhot-dairy").display_name_en(), "First");

  v1::DeleteClusterRequest del;
  del.set_name(dairy.name());
  del.set_etag(dairy.etag());
  EXPECT_EQ(Call(&Stub::DeleteCluster, gov_, del, &out).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(Get("hohhot-dairy").state(), v1::Cluster::ACTIVE);
}

TEST_F(ClustersTest, RetryWithTheSameRequestIdReturnsTheFirstResult) {
  v1::Cluster first, second;
  ASSERT_TRUE(Create("idem", ValidCluster(), &first, "req-0001").ok());
  ASSERT_TRUE(Create("idem", ValidCluster(), &second, "req-0001").ok());
  EXPECT_EQ(first.SerializeAsString(), second.SerializeAsString());
  v1::Cluster other = ValidCluster();
  other.set_display_name_en("different");
  grpc::Status s = Create("idem", other, &second, "req-0001");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("request_id"));

  common::v1::ListAuditEventsRequest audit;
  audit.set_filter("resource = \"clusters/idem\"");
  common::v1::ListAuditEventsResponse events;
  ASSERT_TRUE(Call(&Stub::ListAuditEvents, auditor_, audit, &events).ok());
  ASSERT_EQ(events.events_size(), 1);  // written once
  const auto& e = events.events(0);
  EXPECT_EQ(e.method(), "/clustergov.clusters.v1.ClustersService/CreateCluster");
  EXPECT_EQ(e.method(), absl::StrCat("/", v1::ClustersService::service_full_name(), "/CreateCluster"));
  EXPECT_EQ(e.actor().subject(), "wang.li");
  EXPECT_EQ(e.actor().organization(), "departments/industry_it");
  EXPECT_THAT(e.actor().roles(), ElementsAre("government"));
  EXPECT_EQ(e.etag_before(), "");
  EXPECT_EQ(e.etag_after(), first.etag());
  EXPECT_EQ(e.request_id(), "test-call");    // the call's x-request-id, as in the logs
  EXPECT_EQ(e.idempotency_key(), "req-0001");  // the request_id the client sent
  EXPECT_TRUE(e.has_time());
  audit.set_filter("idempotency_key = \"req-0001\"");
  ASSERT_TRUE(Call(&Stub::ListAuditEvents, auditor_, audit, &events).ok());
  ASSERT_EQ(events.events_size(), 1);
  EXPECT_EQ(events.events(0).resource(), "clusters/idem");
}

TEST_F(ClustersTest, AuditRecordsWhoWhatWhy) {
  v1::Cluster dairy = Get("hohhot-dairy");
  v1::DeleteClusterRequest del;
  del.set_name(dairy.name());
  del.set_reason("合并至其他集群");
  v1::Cluster deleted;
  ASSERT_TRUE(Call(&Stub::DeleteCluster, gov_, del, &deleted).ok());
  common::v1::ListAuditEventsRequest audit;
  audit.set_filter(
      "resource = \"clusters/hohhot-dairy\" AND method = \"/clustergov.clusters.v1.ClustersService/DeleteCluster\"");
  common::v1::ListAuditEventsResponse events;
  ASSERT_TRUE(Call(&Stub::ListAuditEvents, gov_, audit, &events).ok());
  ASSERT_EQ(events.events_size(), 1);
  EXPECT_EQ(events.events(0).reason(), "合并至其他集群");
  EXPECT_EQ(events.events(0).etag_before(), dairy.etag());
  EXPECT_EQ(events.events(0).etag_after(), deleted.etag());
  EXPECT_EQ(events.events(0).idempotency_key(), "");  // none sent
  audit.set_filter("resource = ");
  EXPECT_EQ(Call(&Stub::ListAuditEvents, gov_, audit, &events).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// ------------------------------------------------------------------ lists

TEST_F(ClustersTest, PageTokensAreBoundToTheCallerTheyWereIssuedTo) {
  // ListClusters pages are cached for every caller; each caller still gets tokens of its own.
  const std::string same_department = testing::MakeToken("li.na", "departments/industry_it", {"government"});
  v1::ListClustersRequest req;
  req.set_page_size(5);
  v1::ListClustersResponse gov_page, energy_page;
  // Until the page is served from the cache (a write, such as the seed, keeps list pages out of
  // it for a moment).
  auto& registry = rt_->metrics().registry();
  bool cached = false;
  for (int attempt = 0; attempt < 100 && !cached; ++attempt) {
    double hits = CounterValue(registry, "clustergov_cache_hits_total");
    ASSERT_TRUE(Call(&Stub::ListClusters, gov_, req, &gov_page).ok());
    cached = CounterValue(registry, "clustergov_cache_hits_total") > hits;
    if (!cached) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(cached);
  ASSERT_FALSE(gov_page.next_page_token().empty());
  double hits = CounterValue(registry, "clustergov_cache_hits_total");
  ASSERT_TRUE(Call(&Stub::ListClusters, energy_, req, &energy_page).ok());
  EXPECT_GT(CounterValue(registry, "clustergov_cache_hits_total"), hits);  // the page gov_ loaded
  ASSERT_FALSE(energy_page.next_page_token().empty());
  EXPECT_NE(energy_page.next_page_token(), gov_page.next_page_token());

  v1::ListClustersRequest next = req;
  v1::ListClustersResponse resp;
  for (const std::string* other : {&energy_, &same_department, &auditor_}) {
    next.set_page_token(gov_page.next_page_token());
    grpc::Status s = Call(&Stub::ListClusters, *other, next, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(FieldsOf(s), ElementsAre("page_token"));
    EXPECT_THAT(s.error_message(), HasSubstr("another caller"));
  }
  next.set_page_token(gov_page.next_page_token());
  v1::ListClustersResponse gov_second;
  ASSERT_TRUE(Call(&Stub::ListClusters, gov_, next, &gov_second).ok());
  next.set_page_token(energy_page.next_page_token());
  v1::ListClustersResponse energy_second;
  ASSERT_TRUE(Call(&Stub::ListClusters, energy_, next, &energy_second).ok());
  ASSERT_EQ(gov_second.clusters_size(), 5);
  EXPECT_EQ(energy_second.clusters(0).name(), gov_second.clusters(0).name());

  // The audit trail's tokens too.
  common::v1::ListAuditEventsRequest audit;
  audit.set_page_size(2);
  common::v1::ListAuditEventsResponse events;
  ASSERT_TRUE(Call(&Stub::ListAuditEvents, auditor_, audit, &events).ok());
  ASSERT_FALSE(events.next_page_token().empty());
  audit.set_page_token(events.next_page_token());
  grpc::Status s = Call(&Stub::ListAuditEvents, gov_, audit, &events);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("page_token"));
}

TEST_F(ClustersTest, PaginationAndTamperedTokens) {
  v1::ListClustersRequest req;
  req.set_page_size(5);
  std::vector<std::string> names;
  std::string first_token;
  for (int page = 0; page < 3; ++page) {
    v1::ListClustersResponse resp;
    ASSERT_TRUE(Call(&Stub::ListClusters, gov_, req, &resp).ok());
    EXPECT_EQ(resp.total_size(), 13);
    EXPECT_EQ(resp.clusters_size(), page < 2 ? 5 : 3);
    for (const auto& c : resp.clusters()) names.push_back(c.name());
    if (page == 0) first_token = resp.next_page_token();
    EXPECT_EQ(resp.next_page_token().empty(), page == 2);
    req.set_page_token(resp.next_page_token());
  }
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), 13u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));

  v1::ListClustersResponse resp;
  v1::ListClustersRequest tampered;
  tampered.set_page_size(5);
  std::string token = first_token;
  token[token.size() / 2] = token[token.size() / 2] == 'A' ? 'B' : 'A';
  tampered.set_page_token(token);
  grpc::Status s = Call(&Stub::ListClusters, gov_, tampered, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldsOf(s), ElementsAre("page_token"));
  // A token is bound to its query.
  v1::ListClustersRequest other_query;
  other_query.set_filter("target_tier = TIER_REGION");
  other_query.set_page_token(first_token);
  s = Call(&Stub::ListClusters, gov_, other_query, &resp);
  EXPECT_THAT(FieldsOf(s), ElementsAre("page_token"));
  v1::ListClustersRequest negative;
  negative.set_page_size(-1);
  s = Call(&Stub::ListClusters, gov_, negative, &resp);
  EXPECT_THAT(FieldsOf(s), ElementsAre("page_size"));
}

TEST_F(ClustersTest, Filters) {
  EXPECT_EQ(ListAll("target_tier = TIER_NATIONAL").size(), 3u);
  EXPECT_EQ(ListAll("target_tier = TIER_REGION AND tier = TIER_NONE").size(), 9u);
  auto energy = ListAll("lead_departments:energy");
  std::vector<std::string> energy_names;
  for (const auto& c : energy) energy_names.push_back(c.name());
  EXPECT_THAT(energy_names, UnorderedElementsAre("clusters/hydrogen", "clusters/new-energy-storage"));
  // regions:X matches core or supporting regions; compare with the full list.
  size_t baotou = 0;
  for (const auto& c : ListAll("")) {
    bool has = std::count(c.core_regions().begin(), c.core_regions().end(), "150200") +
                   std::count(c.supporting_regions().begin(), c.supporting_regions().end(), "150200") >
               0;
    baotou += has;
  }
  EXPECT_GT(baotou, 0u);
  EXPECT_EQ(ListAll("regions:150200").size(), baotou);
  EXPECT_EQ(ListAll("core_regions:150100 OR core_regions:150200").size(),
            ListAll("NOT (core_regions != 150100 AND core_regions != 150200)").size());
  EXPECT_EQ(ListAll("display_name_zh:乳制品").size(), 1u);
  EXPECT_EQ(ListAll("display_name_zh = \"x' OR 1=1 --\"").size(), 0u);

  for (const std::string bad : {"tier = BOGUS", "colour = red", "tier =", "(tier = TIER_NONE", "target_year > soon"}) {
    v1::ListClustersRequest req;
    req.set_filter(bad);
    v1::ListClustersResponse resp;
    grpc::Status s = Call(&Stub::ListClusters, gov_, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_THAT(FieldsOf(s), ElementsAre("filter")) << bad;
  }
}

// ------------------------------------------------------------------ key-task progress

TEST_F(ClustersTest, TaskProgressRules) {
  v1::ListTaskProgressRequest list;
  list.set_parent("clusters/hohhot-dairy");
  v1::ListTaskProgressResponse tasks;
  ASSERT_TRUE(Call(&Stub::ListTaskProgress, enterprise_, list, &tasks).ok());
  ASSERT_EQ(tasks.task_progress_size(), 15);
  EXPECT_EQ(tasks.task_progress(9).name(), "clusters/hohhot-dairy/taskProgress/10");
  EXPECT_EQ(tasks.task_progress(9).status(), v1::TaskProgress::NOT_STARTED);

  v1::UpdateTaskProgressRequest update;
  update.mutable_task_progress()->set_name("clusters/hohhot-dairy/taskProgress/10");
  update.mutable_task_progress()->set_status(v1::TaskProgress::IN_PROGRESS);
  update.mutable_task_progress()->set_percent(40);
  update.mutable_task_progress()->set_note("双聘人才 12 名");
  v1::TaskProgress out;
  // Task 10's lead department (HR & Social Security) may; so may the cluster's (Industry & IT).
  ASSERT_TRUE(Call(&Stub::UpdateTaskProgress, hr_, update, &out).ok());
  EXPECT_EQ(out.percent(), 40);
  EXPECT_EQ(out.updated_by().organization(), "departments/hr_social_security");
  update.mutable_task_progress()->set_percent(50);
  update.mutable_task_progress()->set_etag(out.etag());
  ASSERT_TRUE(Call(&Stub::UpdateTaskProgress, gov_, update, &out).ok());
  EXPECT_EQ(Call(&Stub::UpdateTaskProgress, gov_, update, &out).error_code(), grpc::StatusCode::ABORTED);
  update.mutable_task_progress()->clear_etag();
  // Neither lead of the task nor of the cluster.
  EXPECT_EQ(Call(&Stub::UpdateTaskProgress, energy_, update, &out).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Call(&Stub::UpdateTaskProgress, enterprise_, update, &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  auto expect_field = [&](const v1::UpdateTaskProgressRequest& r, const std::string& field) {
    grpc::Status s = Call(&Stub::UpdateTaskProgress, gov_, r, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << field;
    EXPECT_THAT(FieldsOf(s), ElementsAre(field)) << s.error_message();
  };
  auto bad = update;
  bad.mutable_task_progress()->set_percent(101);
  expect_field(bad, "task_progress.percent");
  bad = update;
  bad.mutable_task_progress()->set_status(v1::TaskProgress::COMPLETED);
  expect_field(bad, "task_progress.percent");
  bad = update;
  bad.mutable_task_progress()->set_name("clusters/hohhot-dairy/taskProgress/16");
  expect_field(bad, "task_progress.name");
  bad = update;
  bad.mutable_update_mask()->add_paths("etag");
  expect_field(bad, "update_mask");

  // Across clusters: 13 × 15 rows, paged; filters.
  v1::ListTaskProgressRequest across;
  across.set_parent("clusters/-");
  across.set_page_size(100);
  int rows = 0;
  for (int guard = 0; guard < 10; ++guard) {
    v1::ListTaskProgressResponse page;
    ASSERT_TRUE(Call(&Stub::ListTaskProgress, gov_, across, &page).ok());
    rows += page.task_progress_size();
    if (page.next_page_token().empty()) break;
    across.set_page_token(page.next_page_token());
  }
  EXPECT_EQ(rows, 13 * 15);
  v1::ListTaskProgressRequest filtered;
  filtered.set_parent("clusters/-");
  filtered.set_filter("status = IN_PROGRESS");
  v1::ListTaskProgressResponse in_progress;
  ASSERT_TRUE(Call(&Stub::ListTaskProgress, gov_, filtered, &in_progress).ok());
  ASSERT_EQ(in_progress.task_progress_size(), 1);
  EXPECT_EQ(in_progress.task_progress(0).percent(), 50);
  EXPECT_EQ(in_progress.task_progress(0).note(), "双聘人才 12 名");
}

// ------------------------------------------------------------------ cache

TEST_F(ClustersTest, ReadsAreCachedAndWritesInvalidate) {
  auto& registry = rt_->metrics().registry();
  double hits0 = CounterValue(registry, "clustergov_cache_hits_total");
  double misses0 = CounterValue(registry, "clustergov_cache_misses_total");
  v1::Cluster first = Get("hohhot-dairy");
  v1::Cluster second = Get("hohhot-dairy");
  EXPECT_EQ(first.SerializeAsString(), second.SerializeAsString());
  EXPECT_EQ(CounterValue(registry, "clustergov_cache_misses_total"), misses0 + 1);
  EXPECT_EQ(CounterValue(registry, "clustergov_cache_hits_total"), hits0 + 1);
  EXPECT_NE(redis_->Cli({"KEYS", "cg:v3:clusters:clusters:*:cluster:hohhot-dairy"}), "");

  v1::UpdateClusterRequest update;
  update.mutable_cluster()->set_name("clusters/hohhot-dairy");
  update.mutable_cluster()->set_display_name_en("Hohhot Dairy (updated)");
  update.mutable_update_mask()->add_paths("display_name_en");
  v1::Cluster out;
  ASSERT_TRUE(Call(&Stub::UpdateCluster, gov_, update, &out).ok());
  EXPECT_EQ(Get("hohhot-dairy").display_name_en(), "Hohhot Dairy (updated)");
  // Cached lists see the write too.
  auto all = ListAll("display_name_en:updated");
  ASSERT_EQ(all.size(), 1u);
}

TEST_F(ClustersTest, ServesCorrectlyWhileRedisIsDownAndAfterItReturns) {
  auto& registry = rt_->metrics().registry();
  Get("hohhot-dairy");  // cached
  redis_->Stop();
  double errors0 = CounterValue(registry, "clustergov_cache_errors_total");
  grpc::Status s;
  EXPECT_EQ(Get("hohhot-dairy", &s).display_name_zh(), "呼和浩特乳制品先进制造业集群");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(ListAll("").size(), 13u);
  v1::UpdateClusterRequest update;
  update.mutable_cluster()->set_name("clusters/hohhot-dairy");
  update.mutable_cluster()->set_display_name_en("Written while Redis was down");
  update.mutable_update_mask()->add_paths("display_name_en");
  v1::Cluster out;
  ASSERT_TRUE(Call(&Stub::UpdateCluster, gov_, update, &out).ok());
  EXPECT_EQ(Get("hohhot-dairy").display_name_en(), "Written while Redis was down");
  EXPECT_GT(CounterValue(registry, "clustergov_cache_errors_total"), errors0);

  redis_->Start();
  // The client reconnects by itself (after its short back-off) and the cache fills again.
  bool cached = false;
  for (int i = 0; i < 100 && !cached; ++i) {
    EXPECT_EQ(Get("hohhot-dairy").display_name_en(), "Written while Redis was down");
    cached = !redis_->Cli({"KEYS", "cg:v3:clusters:clusters:*:cluster:hohhot-dairy"}).empty();
    if (!cached) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(cached);
}

TEST_F(ClustersTest, NothingStaleAfterAWriteDuringARedisStall) {
  // Redis keeps its data but stops answering (SIGSTOP): the invalidation of a write cannot reach
  // it. When Redis answers again, the old cached value must not be served.
  EXPECT_EQ(Get("hohhot-dairy").display_name_en(), Get("hohhot-dairy").display_name_en());  // cached now
  redis_->Pause();
  v1::UpdateClusterRequest update;
  update.mutable_cluster()->set_name("clusters/hohhot-dairy");
  update.mutable_cluster()->set_display_name_en("Written during the stall");
  update.mutable_update_mask()->add_paths("display_name_en");
  v1::Cluster out;
  ASSERT_TRUE(Call(&Stub::UpdateCluster, gov_, update, &out).ok());
  EXPECT_EQ(Get("hohhot-dairy").display_name_en(), "Written during the stall");
  redis_->Resume();
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(Get("hohhot-dairy").display_name_en(), "Written during the stall") << "stale read " << i;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace
}  // namespace clustergov::clusters
