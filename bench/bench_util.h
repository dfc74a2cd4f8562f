#pragma once

// What the benchmark drivers share: timing in milliseconds, nearest-rank percentiles (as
// bench/run.sh computes h2load's), HS256 bearer tokens minted with the services' secret.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/auth/auth.h"

namespace clustergov::bench {

using Clock = std::chrono::steady_clock;

inline double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Nearest-rank percentile (0 < p <= 1) of `samples`; 0 for none.
inline double Percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(samples.size())));
  return samples[std::min(samples.size(), std::max<size_t>(rank, 1)) - 1];
}

// "Bearer <token>" for `sub` acting for `org` in `role`, valid for three hours; exits the driver
// (`tool` names it in the message) when the token cannot be minted.
inline std::string MintBearer(const char* tool, const std::string& secret, const std::string& sub,
                              const std::string& org, const std::string& role) {
  TokenSpec spec;
  spec.subject = sub;
  spec.organization = org;
  spec.roles = {role};
  spec.ttl_seconds = 3 * 3600;
  auto token = MintToken(spec, "HS256", secret);
  if (!token.ok()) {
    std::fprintf(stderr, "%s: cannot mint a token: %s\n", tool, std::string(token.status().message()).c_str());
    std::exit(2);
  }
  return absl::StrCat("Bearer ", *token);
}

// --secret when given, else $CLUSTERGOV_AUTH_HS256_SECRET (the services' own), else empty.
inline std::string SecretOr(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("CLUSTERGOV_AUTH_HS256_SECRET");
  return env != nullptr ? env : "";
}

}  // namespace clustergov::bench
