#include "common/auth/service_token.h"

#include <openssl/crypto.h>
#include <sys/stat.h>

#include <fstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace clustergov {
namespace {

constexpr absl::Duration kMinLifetime = absl::Seconds(2);

}  // namespace

absl::StatusOr<std::unique_ptr<ServiceTokenSource>> ServiceTokenSource::Minted(TokenSpec spec, std::string hs256_secret,
                                                                               absl::Duration lifetime, Clock clock) {
  if (lifetime < kMinLifetime) {
    return absl::InvalidArgumentError(absl::StrCat("service token lifetime must be at least ",
                                                   absl::FormatDuration(kMinLifetime)));
  }
  std::unique_ptr<ServiceTokenSource> source(new ServiceTokenSource());
  source->spec_ = std::move(spec);
  source->secret_ = std::move(hs256_secret);
  source->lifetime_ = lifetime;
  source->clock_ = std::move(clock);
  absl::MutexLock lock(&source->mu_);
  if (absl::Status s = source->Mint(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot mint the service token: ", s.message()));
  }
  return source;
}

absl::StatusOr<std::unique_ptr<ServiceTokenSource>> ServiceTokenSource::FromFile(std::string path) {
  std::unique_ptr<ServiceTokenSource> source(new ServiceTokenSource());
  source->path_ = std::move(path);
  struct stat st {};
  if (stat(source->path_.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(source->path_, ": cannot read"));
  }
  absl::MutexLock lock(&source->mu_);
  if (absl::Status s = source->ReadFile({st.st_dev, st.st_ino, st.st_size, st.st_mtim}); !s.ok()) return s;
  return source;
}

ServiceTokenSource::~ServiceTokenSource() { OPENSSL_cleanse(secret_.data(), secret_.size()); }

absl::Status ServiceTokenSource::Mint() const {
  const absl::Time now = clock_();
  TokenSpec spec = spec_;
  spec.issued_at = absl::ToUnixSeconds(now);
  spec.ttl_seconds = absl::ToInt64Seconds(lifetime_);
  auto token = MintToken(spec, "HS256", secret_);
  if (!token.ok()) return token.status();
  token_ = std::move(*token);
  refresh_at_ = now + lifetime_ / 2;
  return absl::OkStatus();
}

absl::Status ServiceTokenSource::ReadFile(const FileState& state) const {
  std::ifstream in(path_);
  std::string line;
  if (!in || !std::getline(in, line)) return absl::InvalidArgumentError(absl::StrCat(path_, ": cannot read"));
  absl::string_view token = absl::StripAsciiWhitespace(line);
  if (token.empty()) return absl::InvalidArgumentError(absl::StrCat(path_, ": holds no token"));
  token_ = std::string(token);
  file_ = state;
  return absl::OkStatus();
}

std::string ServiceTokenSource::Current() const {
  absl::MutexLock lock(&mu_);
  if (path_.empty()) {
    if (clock_() >= refresh_at_) {
      // The only failure is a key MintToken refuses, which Minted() has ruled out.
      if (absl::Status s = Mint(); !s.ok()) log::Warn("service token not re-minted", {{"error", s.message()}});
    }
    return token_;
  }
  struct stat st {};
  if (stat(path_.c_str(), &st) != 0) {
    log::Warn("service token file not readable; keeping the last token", {{"file", path_}});
    return token_;
  }
  FileState state{st.st_dev, st.st_ino, st.st_size, st.st_mtim};
  if (!(state == file_)) {
    if (absl::Status s = ReadFile(state); !s.ok()) {
      log::Warn("service token file changed but holds no token; keeping the last token",
                {{"file", path_}, {"error", s.message()}});
    } else {
      log::Info("service token re-read", {{"file", path_}});
    }
  }
  return token_;
}

}  // namespace clustergov
