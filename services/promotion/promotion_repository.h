#pragma once

// Persistence of the promotion organizations service. Writes run atomically through
// `PromotionTx`; the database also refuses a second ACTIVE designation for a cluster (a partial
// unique index), whatever the service does.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clustergov/promotion/v1/promotion.pb.h"
#include "common/auth/principal.h"
#include "common/list/filter.h"
#include "common/store/unit_of_work.h"

namespace clustergov::promotion {

namespace v1 = ::clustergov::promotion::v1;

class PromotionTx : public store::RepositoryTransaction {
 public:
  using RepositoryTransaction::RepositoryTransaction;
  virtual absl::StatusOr<std::optional<v1::PromotionOrg>> GetOrg(const std::string& id) = 0;
  virtual absl::StatusOr<bool> UsccTaken(const std::string& uscc, const std::string& except_id) = 0;
  virtual absl::Status PutOrg(v1::PromotionOrg& org, bool create) = 0;
  virtual absl::StatusOr<std::optional<v1::Designation>> GetDesignation(int64_t id) = 0;
  virtual absl::StatusOr<std::optional<v1::Designation>> ActiveDesignation(const std::string& cluster) = 0;
  virtual absl::StatusOr<bool> HasPending(const std::string& org, const std::string& cluster) = 0;
  // Inserts when the name is empty (assigns it), else updates.
  virtual absl::Status PutDesignation(v1::Designation& d) = 0;
  virtual absl::StatusOr<std::optional<v1::AnnualReport>> GetReport(const std::string& id) = 0;
  virtual absl::Status PutReport(v1::AnnualReport& r, bool create) = 0;
  virtual absl::StatusOr<bool> HasEvaluation(const std::string& org, int year) = 0;
  virtual absl::Status PutEvaluation(const std::string& org, const v1::Evaluation& e) = 0;
  // The next number of the cluster's designation changes (1, 2, ...): the revision of their
  // events, by which the clusters service orders them.
  virtual absl::StatusOr<int64_t> NextClusterSequence(const std::string& cluster) = 0;
};

struct ListQuery {
  SqlFilter filter;
  std::string after;
  int limit = 50;
  std::string scope;
};

class PromotionRepository : public store::TransactionalRepository<PromotionTx> {
 public:
  virtual const std::vector<FilterField>& OrgFilterFields() const = 0;
  virtual const std::vector<FilterField>& DesignationFilterFields() const = 0;
  virtual const std::vector<FilterField>& ReportFilterFields() const = 0;

  virtual absl::StatusOr<std::optional<v1::PromotionOrg>> GetOrg(const std::string& id) = 0;
  virtual absl::StatusOr<std::vector<v1::PromotionOrg>> ListOrgs(const ListQuery& q) = 0;
  virtual absl::StatusOr<std::optional<v1::Designation>> GetDesignation(int64_t id) = 0;
  virtual absl::StatusOr<std::optional<v1::Designation>> ActiveDesignation(const std::string& cluster) = 0;
  virtual absl::StatusOr<std::vector<v1::Designation>> ListDesignations(const ListQuery& q) = 0;
  // Every ACTIVE designation (one per cluster at most), by cluster.
  virtual absl::StatusOr<std::vector<v1::Designation>> ActiveDesignations() = 0;
  virtual absl::StatusOr<std::optional<v1::AnnualReport>> GetReport(const std::string& id) = 0;
  virtual absl::StatusOr<std::vector<v1::AnnualReport>> ListReports(const ListQuery& q) = 0;
  virtual absl::StatusOr<std::vector<v1::Evaluation>> ListEvaluations(const ListQuery& q) = 0;
};

absl::StatusOr<std::unique_ptr<PromotionRepository>> CreatePromotionRepository(store::Store* db);

}  // namespace clustergov::promotion
