#pragma once

// Structured logs: one JSON object per line on stderr, with the service name and, inside a
// request, its request id.

#include "absl/strings/string_view.h"
#include <initializer_list>
#include <string>

#include <utility>

namespace clustergov::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

using Fields = std::initializer_list<std::pair<absl::string_view, absl::string_view>>;

void Init(absl::string_view service, Level min_level);
// Parses "debug", "info", "warn", "error"; false on anything else.
bool ParseLevel(absl::string_view text, Level* out);
void Write(Level level, absl::string_view message, Fields fields = {});

inline void Debug(absl::string_view m, Fields f = {}) { Write(Level::kDebug, m, f); }
inline void Info(absl::string_view m, Fields f = {}) { Write(Level::kInfo, m, f); }
inline void Warn(absl::string_view m, Fields f = {}) { Write(Level::kWarn, m, f); }
inline void Error(absl::string_view m, Fields f = {}) { Write(Level::kError, m, f); }

// Sets the request id attached to every log line written by this thread while in scope.
class ScopedRequestId {
 public:
  explicit ScopedRequestId(std::string id);
  ~ScopedRequestId();
  ScopedRequestId(const ScopedRequestId&) = delete;
  ScopedRequestId& operator=(const ScopedRequestId&) = delete;

 private:
  std::string previous_;
};

const std::string& CurrentRequestId();

}  // namespace clustergov::log
