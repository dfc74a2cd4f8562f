#include "services/enterprises/client/enterprise_directory.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "clustergov/events/v1/events.pb.h"
#include "clustergov/enterprises/v1/enterprises.grpc.pb.h"
#include "common/log/log.h"
#include "common/server/client.h"
#include "common/status/status.h"

namespace clustergov::enterprises {
namespace {

absl::Status Unavailable(const grpc::Status& s) {
  log::Warn("enterprises service unavailable", {{"code", std::to_string(s.error_code())}, {"error", s.error_message()}});
  return absl::UnavailableError("the enterprises service is unavailable; retry later");
}

}  // namespace

class EnterpriseDirectory::Impl {
 public:
  Impl(std::shared_ptr<grpc::Channel> channel, std::unique_ptr<cache::Cache> cache, absl::Duration timeout)
      : stub_(v1::EnterprisesService::NewStub(channel)), cache_(std::move(cache)), timeout_(timeout) {}

  // Asks the enterprises service whether enterprises/{uscc} is registered and active.
  absl::Status FetchRegistered(const server::CallContext& call, const std::string& uscc) {
    const std::string name = absl::StrCat("enterprises/", uscc);
    v1::GetEnterpriseRequest get;
    get.set_name(name);
    v1::Enterprise enterprise;
    auto ctx = server::OutgoingContext(call, timeout_);
    grpc::Status s = stub_->GetEnterprise(ctx.get(), get, &enterprise);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND || s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      return absl::FailedPreconditionError(absl::StrCat(name, " is not registered"));
    }
    if (!s.ok()) return Unavailable(s);
    if (enterprise.state() != v1::Enterprise::ACTIVE) {
      return absl::FailedPreconditionError(absl::StrCat(name, " is deregistered"));
    }
    return absl::OkStatus();
  }

  absl::Status CheckRegistered(const server::CallContext& call, const std::string& uscc) {
    auto fetch = [&]() -> absl::StatusOr<std::string> {
      CG_RETURN_IF_ERROR(FetchRegistered(call, uscc));
      return std::string("registered");
    };
    auto answer = cache_ != nullptr ? cache_->GetOrLoadList(Collection(uscc), "registered", fetch) : fetch();
    return answer.status();
  }

  absl::Status CheckMember(const server::CallContext& call, const std::string& uscc, const std::string& cluster_id) {
    auto fetch = [&]() -> absl::StatusOr<std::string> {
      CG_RETURN_IF_ERROR(FetchRegistered(call, uscc));
      const std::string name = absl::StrCat("enterprises/", uscc);
      v1::ListMembershipsRequest list;
      list.set_parent(name);
      list.set_page_size(500);
      for (int page = 0; page < 20; ++page) {
        v1::ListMembershipsResponse resp;
        auto lctx = server::OutgoingContext(call, timeout_);
        grpc::Status ls = stub_->ListMemberships(lctx.get(), list, &resp);
        if (!ls.ok()) return Unavailable(ls);
        for (const auto& m : resp.memberships()) {
          if (m.cluster() == absl::StrCat("clusters/", cluster_id)) return std::string("member");
        }
        if (resp.next_page_token().empty()) break;
        list.set_page_token(resp.next_page_token());
      }
      return absl::FailedPreconditionError(absl::StrCat(name, " is not a member of clusters/", cluster_id));
    };
    // Only a positive answer is cached: errors are returned by the loader and never stored.
    auto answer =
        cache_ != nullptr ? cache_->GetOrLoadList(Collection(uscc), absl::StrCat("member:", cluster_id), fetch) : fetch();
    return answer.status();
  }

  void Invalidate(absl::string_view enterprise) {
    if (absl::StartsWith(enterprise, "enterprises/")) enterprise.remove_prefix(12);
    if (cache_ != nullptr) cache_->Invalidate({cache::Cache::GenerationKey(Collection(enterprise))});
  }

  bool caching() const { return cache_ != nullptr; }

 private:
  // The answers about one enterprise are one collection, dropped together.
  static std::string Collection(absl::string_view uscc) { return absl::StrCat("enterprise:", uscc); }

  std::unique_ptr<v1::EnterprisesService::Stub> stub_;
  std::unique_ptr<cache::Cache> cache_;
  absl::Duration timeout_;
};

absl::Status EnterpriseDirectory::CheckRegistered(const server::CallContext& call, const std::string& uscc) {
  return impl_->CheckRegistered(call, uscc);
}

EnterpriseDirectory::EnterpriseDirectory(server::Runtime& runtime, std::shared_ptr<grpc::Channel> channel,
                                         std::chrono::seconds ttl, absl::Duration timeout)
    : impl_(std::make_unique<Impl>(std::move(channel), runtime.MakeCache("enterpriseinfo", ttl), timeout)) {
  if (!impl_->caching()) return;
  runtime.DropOnEvents("enterprises", events::v1::EnterpriseChanged::descriptor()->full_name(),
                       [impl = impl_.get()](const std::string& subject) { impl->Invalidate(subject); });
}

void EnterpriseDirectory::Invalidate(absl::string_view enterprise) { impl_->Invalidate(enterprise); }

EnterpriseDirectory::~EnterpriseDirectory() = default;

absl::Status EnterpriseDirectory::CheckMember(const server::CallContext& call, const std::string& uscc,
                                              const std::string& cluster_id) {
  return impl_->CheckMember(call, uscc, cluster_id);
}

}  // namespace clustergov::enterprises
