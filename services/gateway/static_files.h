#pragma once

// The web console's files (console/, built into <build>/console by scripts/build.sh), served by
// the gateway under `/` beside the API. The directory is read into memory once at startup, so a
// request never touches the file system: a path names a loaded file or nothing, and traversal
// (`..`, `.`, backslashes, NUL) is refused before the lookup. Files under `assets/` carry a
// content hash in their names (Vite's output) and are cached for a year; everything else
// (index.html) is revalidated on every load. A path that names no file and does not look like a
// file (no extension, not under assets/) is a client route: index.html answers it.

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/gateway/http_request.h"

namespace clustergov::gateway {

// The console pages' Content-Security-Policy: nothing inline, nothing from elsewhere.
inline constexpr char kConsoleContentSecurityPolicy[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

class StaticFiles {
 public:
  // Reads every regular file under `dir`. INVALID_ARGUMENT when `dir` is not a directory, has no
  // index.html, or holds more than `max_total_bytes`.
  static absl::StatusOr<std::unique_ptr<StaticFiles>> Load(const std::string& dir, size_t max_total_bytes);

  // The answer to a GET of `path` (the request target's path, percent-encoded as received):
  // the file with its Content-Type, Cache-Control, ETag and the console's CSP; 304 when
  // `if_none_match` holds; index.html for a client route; 404 for a missing file; 400 for a path
  // that tries to leave the directory.
  HttpResponse Serve(absl::string_view path, absl::string_view if_none_match) const;

  size_t file_count() const { return files_.size(); }
  size_t total_bytes() const { return total_bytes_; }

  // The media type served for a file name, by its extension.
  static std::string ContentType(absl::string_view name);

 private:
  struct File {
    std::string body;
    std::string content_type;
    std::string etag;  // unquoted
    bool immutable = false;
  };
  StaticFiles() = default;
  HttpResponse Answer(const File& file, absl::string_view if_none_match) const;

  std::map<std::string, File, std::less<>> files_;  // by path relative to the directory, '/'-separated
  size_t total_bytes_ = 0;
};

}  // namespace clustergov::gateway
