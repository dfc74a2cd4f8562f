#include "services/clusters/client/cluster_directory.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "clustergov/clusters/v1/clusters.grpc.pb.h"
#include "clustergov/events/v1/events.pb.h"
#include "common/auth/principal.h"
#include "common/log/log.h"
#include "common/server/client.h"
#include "common/status/status.h"

namespace clustergov::clusters {

class ClusterDirectory::Impl {
 public:
  Impl(std::shared_ptr<grpc::Channel> channel, std::unique_ptr<cache::Cache> cache, absl::Duration timeout)
      : stub_(v1::ClustersService::NewStub(channel)), cache_(std::move(cache)), timeout_(timeout) {}

  absl::StatusOr<v1::Cluster> Lookup(const server::CallContext& call, absl::string_view cluster, bool fresh) {
    const std::string id = Id(cluster);
    if (fresh) Invalidate(id);
    auto fetch = [&]() -> absl::StatusOr<std::string> {
      v1::GetClusterRequest req;
      req.set_name(absl::StrCat("clusters/", id));
      v1::Cluster out;
      auto ctx = server::OutgoingContext(call, timeout_);
      grpc::Status s = stub_->GetCluster(ctx.get(), req, &out);
      if (s.ok()) return out.SerializeAsString();
      switch (s.error_code()) {
        case grpc::StatusCode::NOT_FOUND:
          return absl::NotFoundError(absl::StrCat("clusters/", id, " does not exist"));
        case grpc::StatusCode::INVALID_ARGUMENT:
          return absl::NotFoundError(absl::StrCat("clusters/", id, " is not a valid cluster name"));
        case grpc::StatusCode::UNAUTHENTICATED:
        case grpc::StatusCode::PERMISSION_DENIED:
          return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                              absl::StrCat("clusters service refused the lookup: ", s.error_message()));
        default:
          log::Warn("clusters service unavailable", {{"code", std::to_string(s.error_code())},
                                                     {"error", s.error_message()}});
          return absl::UnavailableError("the clusters service is unavailable; retry later");
      }
    };
    auto bytes = cache_ != nullptr ? cache_->GetOrLoad(absl::StrCat("cluster:", id), fetch) : fetch();
    if (!bytes.ok()) return bytes.status();
    v1::Cluster cluster_proto;
    if (!cluster_proto.ParseFromString(*bytes)) return absl::InternalError("cached cluster does not parse");
    return cluster_proto;
  }

  void Invalidate(absl::string_view cluster) {
    if (cache_ != nullptr) cache_->Invalidate({absl::StrCat("cluster:", Id(cluster))});
  }

  bool caching() const { return cache_ != nullptr; }

 private:
  static std::string Id(absl::string_view cluster) {
    return std::string(absl::StartsWith(cluster, "clusters/") ? cluster.substr(9) : cluster);
  }

  std::unique_ptr<v1::ClustersService::Stub> stub_;
  std::unique_ptr<cache::Cache> cache_;
  absl::Duration timeout_;
};

ClusterDirectory::ClusterDirectory(server::Runtime& runtime, std::shared_ptr<grpc::Channel> channel,
                                   std::chrono::seconds ttl, absl::Duration timeout)
    : impl_(std::make_unique<Impl>(std::move(channel), runtime.MakeCache("clusterinfo", ttl), timeout)) {
  if (!impl_->caching()) return;
  runtime.DropOnEvents("clusters", events::v1::ClusterChanged::descriptor()->full_name(),
                       [impl = impl_.get()](const std::string& subject) { impl->Invalidate(subject); });
}

void ClusterDirectory::Invalidate(absl::string_view cluster) { impl_->Invalidate(cluster); }

ClusterDirectory::~ClusterDirectory() = default;

absl::StatusOr<v1::Cluster> ClusterDirectory::Lookup(const server::CallContext& call, absl::string_view cluster) {
  return impl_->Lookup(call, cluster, /*fresh=*/false);
}

absl::StatusOr<v1::Cluster> ClusterDirectory::LookupFresh(const server::CallContext& call,
                                                          absl::string_view cluster) {
  return impl_->Lookup(call, cluster, /*fresh=*/true);
}

bool IsLeadDepartmentOf(const Principal& principal, const v1::Cluster& cluster) {
  for (const auto& d : cluster.lead_departments()) {
    if (principal.ActsForDepartment(d)) return true;
  }
  return false;
}

bool IsPromotionOrganizationOf(const Principal& principal, const v1::Cluster& cluster) {
  return !cluster.promotion_organization().empty() && principal.HasRole(roles::kPromotionOrg) &&
         principal.organization == cluster.promotion_organization();
}

}  // namespace clustergov::clusters
