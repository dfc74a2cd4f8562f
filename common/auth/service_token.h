#pragma once

// The bearer token a service presents when it calls another service on its own behalf (role
// `service`), kept valid for as long as the process runs:
//
//   - minted from the HS256 secret (development): re-minted once less than half of its lifetime
//     is left, so a token handed out is valid for at least half a lifetime;
//   - read from a file (production: a Kubernetes Secret mounted as a file, rotated by the identity
//     provider's tooling): re-read whenever the file changes (another inode, size or mtime), so a
//     rotated Secret takes effect without a restart. A file that cannot be read or is empty at
//     that moment (the Secret's symlink swap) keeps the last token and logs a warning.
//
// Ask for the token at each call (Current()); never keep it. Safe to call from many threads.

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/auth/auth.h"

namespace clustergov {

class ServiceTokenSource {
 public:
  using Clock = std::function<absl::Time()>;

  // Mints HS256 tokens for `spec` (its ttl_seconds is replaced by `lifetime`, at least 2 s) signed
  // with `hs256_secret`. INVALID_ARGUMENT when the first token cannot be minted (a short secret).
  static absl::StatusOr<std::unique_ptr<ServiceTokenSource>> Minted(TokenSpec spec, std::string hs256_secret,
                                                                    absl::Duration lifetime,
                                                                    Clock clock = [] { return absl::Now(); });
  // Reads the token from the first line of `path`. INVALID_ARGUMENT when the file cannot be read or
  // holds no token now.
  static absl::StatusOr<std::unique_ptr<ServiceTokenSource>> FromFile(std::string path);

  ~ServiceTokenSource();
  ServiceTokenSource(const ServiceTokenSource&) = delete;
  ServiceTokenSource& operator=(const ServiceTokenSource&) = delete;

  // The token to send now: re-minted or re-read first when due.
  std::string Current() const;

 private:
  struct FileState {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = -1;
    timespec mtime{};
    bool operator==(const FileState& o) const {
      return device == o.device && inode == o.inode && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
             mtime.tv_nsec == o.mtime.tv_nsec;
    }
  };

  ServiceTokenSource() = default;
  absl::Status Mint() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ReadFile(const FileState& state) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Minted tokens.
  TokenSpec spec_;
  std::string secret_;
  absl::Duration lifetime_;
  Clock clock_;
  // File tokens.
  std::string path_;

  mutable absl::Mutex mu_;
  mutable std::string token_ ABSL_GUARDED_BY(mu_);
  mutable absl::Time refresh_at_ ABSL_GUARDED_BY(mu_);  // minted: when to mint the next one
  mutable FileState file_ ABSL_GUARDED_BY(mu_);         // file: the state the token was read in
};

}  // namespace clustergov
