#pragma once

// How every repository stores a resource: the serialized proto in a BLOB column beside indexed
// columns, a revision counter behind an opaque etag ("v<revision>"), and typed selects.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/status/status.h"
#include "common/store/sql.h"

namespace clustergov::store {

inline std::string Etag(int64_t revision) { return absl::StrCat("v", revision); }

// The revision behind an etag made by Etag(); 0 for an empty or foreign one.
inline int64_t RevisionOf(const std::string& etag) {
  if (etag.size() < 2 || etag[0] != 'v') return 0;
  int64_t r = 0;
  for (size_t i = 1; i < etag.size(); ++i) {
    if (etag[i] < '0' || etag[i] > '9') return 0;
    r = r * 10 + (etag[i] - '0');
  }
  return r;
}

// Runs an INSERT ending in `RETURNING id` and answers the generated id.
inline absl::StatusOr<int64_t> InsertedId(Statement& insert) {
  CG_ASSIGN_OR_RETURN(bool row, insert.Step());
  if (!row) return absl::InternalError("insert returned no id");
  const int64_t id = insert.Int(0);
  CG_RETURN_IF_ERROR(insert.Run());
  return id;
}

template <typename Msg>
absl::StatusOr<Msg> ParseStored(const std::string& bytes) {
  Msg m;
  if (!m.ParseFromString(bytes)) return absl::InternalError("stored record does not parse");
  return m;
}

// Runs a SELECT whose first column is a serialized `Msg` and parses every row.
template <typename Msg>
absl::StatusOr<std::vector<Msg>> SelectAll(Connection& c, const std::string& sql,
                                           const std::function<void(Statement&)>& bind) {
  CG_ASSIGN_OR_RETURN(auto stmt, c.Prepare(sql));
  bind(stmt);
  std::vector<Msg> out;
  while (true) {
    CG_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    CG_ASSIGN_OR_RETURN(auto m, ParseStored<Msg>(stmt.Blob(0)));
    out.push_back(std::move(m));
  }
  return out;
}

template <typename Msg>
absl::StatusOr<std::optional<Msg>> SelectOne(Connection& c, const std::string& sql,
                                             const std::function<void(Statement&)>& bind) {
  CG_ASSIGN_OR_RETURN(auto all, SelectAll<Msg>(c, sql, bind));
  if (all.empty()) return std::optional<Msg>();
  return std::optional<Msg>(std::move(all.front()));
}

}  // namespace clustergov::store
