#include "services/gateway/conditional.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace clustergov::gateway {
namespace {

bool IsOws(char c) { return c == ' ' || c == '\t'; }

// etagc = %x21 / %x23-7E / obs-text: visible characters but '"'.
bool IsEtagChar(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return u == 0x21 || (u >= 0x23 && u != 0x7F);
}

// A tag as it appears in a message: at most 64 characters of it, the header may be long.
std::string Quoted(const EntityTag& tag) {
  constexpr size_t kShown = 64;
  absl::string_view opaque = tag.opaque;
  return absl::StrCat(tag.weak ? "W/" : "", "\"", opaque.substr(0, kShown), opaque.size() > kShown ? "..." : "",
                      "\"");
}

}  // namespace

absl::StatusOr<EntityTagList> ParseEntityTags(absl::string_view header, absl::string_view value) {
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat(header, ": ", what, " (expected \"*\" or entity tags such as \"abc\", W/\"abc\")"));
  };
  EntityTagList list;
  size_t i = 0;
  const size_t n = value.size();
  auto skip_ows = [&] {
    while (i < n && IsOws(value[i])) ++i;
  };
  skip_ows();
  size_t end = n;
  while (end > i && IsOws(value[end - 1])) --end;
  if (value.substr(i, end - i) == "*") {
    list.any = true;
    return list;
  }
  while (true) {
    // Empty list elements ("a, , b") are allowed.
    while (i < n && (IsOws(value[i]) || value[i] == ',')) ++i;
    if (i >= n) break;
    EntityTag tag;
    if (value.substr(i, 2) == "W/") {
      tag.weak = true;
      i += 2;
    }
    if (i < n && value[i] == '"') {
      size_t close = value.find('"', i + 1);
      if (close == absl::string_view::npos) return bad("an entity tag misses its closing quote");
      tag.opaque = std::string(value.substr(i + 1, close - i - 1));
      i = close + 1;
    } else {
      size_t start = i;
      while (i < n && value[i] != ',' && !IsOws(value[i])) ++i;
      tag.opaque = std::string(value.substr(start, i - start));
      if (tag.opaque == "*") return bad("\"*\" must stand alone");
      if (tag.opaque.empty()) return bad("an empty entity tag");
    }
    if (!std::all_of(tag.opaque.begin(), tag.opaque.end(), IsEtagChar)) {
      return bad("an entity tag holds a character entity tags may not");
    }
    list.tags.push_back(std::move(tag));
    skip_ows();
    if (i < n && value[i] != ',') return bad("entity tags must be separated by commas");
  }
  if (list.tags.empty()) return bad("no entity tag");
  return list;
}

bool NoneMatchHolds(const EntityTagList& list, absl::string_view current) {
  if (list.any) return true;
  if (current.empty()) return false;
  return std::any_of(list.tags.begin(), list.tags.end(), [&](const EntityTag& t) { return t.opaque == current; });
}

absl::StatusOr<std::string> IfMatchEtag(const EntityTagList& list) {
  if (list.any) return std::string();
  const EntityTag* strong = nullptr;
  for (const auto& tag : list.tags) {
    if (tag.weak) continue;
    if (strong != nullptr && tag.opaque != strong->opaque) {
      return absl::InvalidArgumentError(absl::StrCat("If-Match: lists several entity tags (", Quoted(*strong), ", ",
                                                     Quoted(tag), "); send the one ETag the resource was read with"));
    }
    strong = &tag;
  }
  if (strong == nullptr) {
    return absl::AbortedError(absl::StrCat("If-Match: ", Quoted(list.tags.front()),
                                           " is weak and never matches (If-Match compares strongly; "
                                           "send the ETag as received)"));
  }
  if (strong->opaque.empty()) {
    // Sent on, an empty etag would mean "no condition".
    return absl::AbortedError("If-Match: \"\" matches no version");
  }
  return strong->opaque;
}

}  // namespace clustergov::gateway
