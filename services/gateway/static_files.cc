#include "services/gateway/static_files.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/gateway/conditional.h"
#include "services/gateway/errors.h"
#include "services/gateway/path_template.h"

namespace clustergov::gateway {
namespace {

constexpr char kIndex[] = "index.html";
constexpr char kAssetsPrefix[] = "assets/";

// FNV-1a 64 of the content: a validator, not a security measure.
std::string ContentEtag(absl::string_view body) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : body) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return absl::StrCat(absl::Hex(h, absl::kZeroPad16), "-", body.size());
}

}  // namespace

std::string StaticFiles::ContentType(absl::string_view name) {
  static const std::pair<const char*, const char*> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".webmanifest", "application/manifest+json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".webp", "image/webp"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".woff", "font/woff"},
      {".txt", "text/plain; charset=utf-8"},
  };
  std::string lower = absl::AsciiStrToLower(name);
  for (const auto& [ext, type] : kTypes) {
    if (absl::EndsWith(lower, ext)) return type;
  }
  return "application/octet-stream";
}

absl::StatusOr<std::unique_ptr<StaticFiles>> StaticFiles::Load(const std::string& dir, size_t max_total_bytes) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("console directory ", dir, " is not a directory"));
  }
  std::unique_ptr<StaticFiles> files(new StaticFiles());
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string relative = it->path().lexically_relative(dir).generic_string();
    std::ifstream in(it->path(), std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", it->path().string()));
    File file;
    file.body = std::move(content).str();
    files->total_bytes_ += file.body.size();
    if (files->total_bytes_ > max_total_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("console directory ", dir, " holds more than ", max_total_bytes, " bytes"));
    }
    file.content_type = ContentType(relative);
    file.etag = ContentEtag(file.body);
    file.immutable = absl::StartsWith(relative, kAssetsPrefix);
    files->files_.emplace(std::move(relative), std::move(file));
  }
  if (ec) return absl::InvalidArgumentError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  if (files->files_.count(kIndex) == 0) {
    return absl::InvalidArgumentError(absl::StrCat("console directory ", dir, " has no ", kIndex));
  }
  return files;
}

HttpResponse StaticFiles::Answer(const File& file, absl::string_view if_none_match) const {
  HttpResponse r;
  r.headers.emplace_back("ETag", absl::StrCat("\"", file.etag, "\""));
  r.headers.emplace_back("Cache-Control", file.immutable ? "public, max-age=31536000, immutable" : "no-cache");
  r.headers.emplace_back("Content-Security-Policy", kConsoleContentSecurityPolicy);
  if (!if_none_match.empty()) {
    auto list = ParseEntityTags("If-None-Match", if_none_match);
    if (list.ok() && NoneMatchHolds(*list, file.etag)) {
      r.status = 304;
      return r;
    }
  }
  r.headers.emplace_back("Content-Type", file.content_type);
  r.body = file.body;
  return r;
}

HttpResponse StaticFiles::Serve(absl::string_view path, absl::string_view if_none_match) const {
  std::string decoded;
  if (!PercentDecode(path, /*plus_is_space=*/false, &decoded)) {
    return ErrorResponse(400, absl::InvalidArgumentError("malformed percent-encoding in the path"));
  }
  std::vector<absl::string_view> segments = absl::StrSplit(absl::string_view(decoded).substr(1), '/');
  for (absl::string_view s : segments) {
    if (s == "." || s == ".." || absl::StrContains(s, '\\') || absl::StrContains(s, '\0')) {
      return ErrorResponse(400, absl::InvalidArgumentError("the path may not leave the console's directory"));
    }
  }
  absl::string_view key = absl::string_view(decoded).substr(1);
  if (key.empty() || absl::EndsWith(key, "/")) {
    std::string with_index = absl::StrCat(key, kIndex);
    auto it = files_.find(with_index);
    if (it != files_.end()) return Answer(it->second, if_none_match);
  } else if (auto it = files_.find(key); it != files_.end()) {
    return Answer(it->second, if_none_match);
  }
  // Not a file: a missing asset or something that looks like a file is 404; anything else is a
  // route of the single-page application.
  absl::string_view last = segments.empty() ? absl::string_view() : segments.back();
  if (absl::StartsWith(key, kAssetsPrefix) || absl::StrContains(last, '.')) {
    return ErrorResponse(404, absl::NotFoundError(absl::StrCat("no file ", path)));
  }
  return Answer(files_.find(kIndex)->second, if_none_match);
}

}  // namespace clustergov::gateway
