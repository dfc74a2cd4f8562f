#include "absl/strings/string_view.h"
#include "common/log/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace clustergov::log {
namespace {

struct LoggerState {
  std::mutex mu;
  std::string service = "clustergov";
  std::atomic<int> min_level{static_cast<int>(Level::kInfo)};
};

LoggerState& State() {
  static auto* state = new LoggerState();  // never destroyed: usable during shutdown
  return *state;
}

thread_local std::string tls_request_id;

void AppendJsonString(std::string* out, absl::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20) {
          absl::StrAppend(out, "\\u00", absl::Hex(c, absl::kZeroPad2));
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

absl::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

}  // namespace

void Init(absl::string_view service, Level min_level) {
  auto& s = State();
  std::lock_guard<std::mutex> lock(s.mu);
  s.service = std::string(service);
  s.min_level = static_cast<int>(min_level);
}

bool ParseLevel(absl::string_view text, Level* out) {
  if (text == "debug") { *out = Level::kDebug; return true; }
  if (text == "info") { *out = Level::kInfo; return true; }
  if (text == "warn") { *out = Level::kWarn; return true; }
  if (text == "error") { *out = Level::kError; return true; }
  return false;
}

void Write(Level level, absl::string_view message, Fields fields) {
  auto& s = State();
  if (static_cast<int>(level) < s.min_level.load(std::memory_order_relaxed)) {
    return;
  }
  std::string line = "{\"ts\":";
  AppendJsonString(&line, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()));
  line.append(",\"level\":");
  AppendJsonString(&line, LevelName(level));
  {
    std::lock_guard<std::mutex> lock(s.mu);
    line.append(",\"service\":");
    AppendJsonString(&line, s.service);
  }
  if (!tls_request_id.empty()) {
    line.append(",\"request_id\":");
    AppendJsonString(&line, tls_request_id);
  }
  line.append(",\"msg\":");
  AppendJsonString(&line, message);
  for (const auto& [key, value] : fields) {
    line.push_back(',');
    AppendJsonString(&line, key);
    line.push_back(':');
    AppendJsonString(&line, value);
  }
  line.append("}\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

ScopedRequestId::ScopedRequestId(std::string id) : previous_(std::move(tls_request_id)) {
  tls_request_id = std::move(id);
}

ScopedRequestId::~ScopedRequestId() { tls_request_id = std::move(previous_); }

const std::string& CurrentRequestId() { return tls_request_id; }

}  // namespace clustergov::log
