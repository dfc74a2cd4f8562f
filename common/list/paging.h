#pragma once

// The request side of every List RPC in one place: page size normalized, filter compiled against
// the resource's fields, the page token checked against the query and the caller it was issued
// for, and the next token, issued to the same caller, encoded from the last item's key.

#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "common/list/filter.h"
#include "common/list/page_token.h"

namespace clustergov {

struct ListPlan {
  int page_size = 0;
  SqlFilter filter;
  uint64_t query_hash = 0;
  Principal caller;       // whom the page tokens are issued to
  std::string after_key;  // the keyset position from the page token ("" on the first page)
};

// INVALID_ARGUMENT on page_size, filter or page_token. `query_parts` identify the query (method,
// filter, ordering, scope): a token from another query, or issued to another caller, is refused.
absl::StatusOr<ListPlan> PlanList(const PageTokenCodec& tokens, const Principal& caller, int32_t page_size,
                                  const std::string& page_token, const std::string& filter,
                                  const std::vector<FilterField>& fields,
                                  std::initializer_list<std::string_view> query_parts);

// The token of the page after one ending with `last_key`, issued to the plan's caller.
std::string NextPageToken(const PageTokenCodec& tokens, const ListPlan& plan, const std::string& last_key);

// A page cached for every caller carries a next-page token issued to the caller who loaded it:
// this is the same token issued to the plan's caller (empty stays empty).
absl::StatusOr<std::string> NextPageTokenForCaller(const PageTokenCodec& tokens, const ListPlan& plan,
                                                   const std::string& cached_token);

// Keeps the first plan.page_size of `items` (fetched with limit page_size + 1) in `out`, and
// returns the next page token (empty on the last page). `key` gives an item's keyset key.
template <typename Item, typename Out, typename KeyFn>
std::string TakePage(const PageTokenCodec& tokens, const ListPlan& plan, std::vector<Item>& items, Out* out,
                     KeyFn key) {
  for (size_t i = 0; i < items.size() && static_cast<int>(i) < plan.page_size; ++i) *out->Add() = std::move(items[i]);
  if (static_cast<int>(items.size()) <= plan.page_size) return "";
  return NextPageToken(tokens, plan, key(out->Get(plan.page_size - 1)));
}

}  // namespace clustergov
