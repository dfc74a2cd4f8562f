#include "common/list/paging.h"

namespace clustergov {

absl::StatusOr<ListPlan> PlanList(const PageTokenCodec& tokens, const Principal& caller, int32_t page_size,
                                  const std::string& page_token, const std::string& filter,
                                  const std::vector<FilterField>& fields,
                                  std::initializer_list<std::string_view> query_parts) {
  ListPlan plan;
  plan.caller = caller;
  auto size = NormalizePageSize(page_size);
  if (!size.ok()) return size.status();
  plan.page_size = *size;
  auto compiled = CompileFilter(filter, fields);
  if (!compiled.ok()) return compiled.status();
  plan.filter = std::move(*compiled);
  plan.query_hash = QueryHash(query_parts);
  if (!page_token.empty()) {
    auto payload = tokens.Decode(page_token, plan.query_hash, caller);
    if (!payload.ok()) return payload.status();
    plan.after_key = payload->last_key();
  }
  return plan;
}

std::string NextPageToken(const PageTokenCodec& tokens, const ListPlan& plan, const std::string& last_key) {
  common::v1::PageTokenPayload next;
  next.set_query_hash(plan.query_hash);
  next.set_last_key(last_key);
  return tokens.Encode(next, plan.caller);
}

absl::StatusOr<std::string> NextPageTokenForCaller(const PageTokenCodec& tokens, const ListPlan& plan,
                                                   const std::string& cached_token) {
  if (cached_token.empty()) return cached_token;
  return tokens.Reissue(cached_token, plan.query_hash, plan.caller);
}

}  // namespace clustergov
