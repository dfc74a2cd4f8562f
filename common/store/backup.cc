#include "common/store/backup.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace clustergov::store {

namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// fsyncs `path` (a file or a directory).
bool Sync(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return false;
  bool ok = fsync(fd) == 0;
  close(fd);
  return ok;
}

std::string DirOf(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}

struct Handle {
  sqlite3* db = nullptr;
  ~Handle() { sqlite3_close_v2(db); }
};

}  // namespace

absl::StatusOr<BackupResult> BackupDatabase(const std::string& source, const std::string& dest) {
  if (!Exists(source)) return absl::NotFoundError(absl::StrCat("no database at ", source));
  if (Exists(dest)) return absl::AlreadyExistsError(absl::StrCat(dest, " exists; a backup never overwrites"));
  const std::string partial = dest + ".partial";
  std::remove(partial.c_str());

  Handle src, out;
  if (sqlite3_open_v2(source.c_str(), &src.db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    return absl::UnavailableError(absl::StrCat("cannot open ", source, ": ", sqlite3_errmsg(src.db)));
  }
  sqlite3_busy_timeout(src.db, 10000);
  if (sqlite3_open_v2(partial.c_str(), &out.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    return absl::UnavailableError(absl::StrCat("cannot create ", partial, ": ", sqlite3_errmsg(out.db)));
  }
  sqlite3_backup* backup = sqlite3_backup_init(out.db, "main", src.db, "main");
  if (backup == nullptr) {
    std::string why = sqlite3_errmsg(out.db);
    std::remove(partial.c_str());
    return absl::UnavailableError(absl::StrCat("cannot back up ", source, ": ", why));
  }
  // All pages in one step: one read transaction, so the copy is the database as of one moment
  // (writers go on in the WAL meanwhile). Busy only while a checkpoint holds the file: retried.
  int rc;
  for (int attempt = 0; (rc = sqlite3_backup_step(backup, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED; ++attempt) {
    if (attempt == 100) break;
    sqlite3_sleep(100);
  }
  BackupResult result;
  result.pages = sqlite3_backup_pagecount(backup);
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) {
    std::remove(partial.c_str());
    return absl::UnavailableError(absl::StrCat("backup of ", source, " failed: ", sqlite3_errstr(rc)));
  }
  // The copy stands alone: no WAL of its own to carry around, and no identity of the original
  // (identity.h): started, it is another store, whose cache namespace holds nothing of the original's.
  sqlite3_exec(out.db, "PRAGMA journal_mode=DELETE", nullptr, nullptr, nullptr);
  sqlite3_exec(out.db, "DELETE FROM store_identity", nullptr, nullptr, nullptr);  // absent in a store never started
  std::string integrity;
  sqlite3_exec(
      out.db, "PRAGMA integrity_check",
      [](void* sink, int, char** values, char**) {
        static_cast<std::string*>(sink)->append(values[0] != nullptr ? values[0] : "");
        return 0;
      },
      &integrity, nullptr);
  sqlite3_close_v2(out.db);
  out.db = nullptr;
  if (integrity != "ok") {
    std::remove(partial.c_str());
    return absl::DataLossError(absl::StrCat("the copy of ", source, " fails its integrity check: ", integrity));
  }
  struct stat st;
  result.bytes = stat(partial.c_str(), &st) == 0 ? st.st_size : 0;
  if (!Sync(partial) || std::rename(partial.c_str(), dest.c_str()) != 0 || !Sync(DirOf(dest))) {
    std::remove(partial.c_str());
    return absl::UnavailableError(absl::StrCat("cannot write ", dest));
  }
  log::Info("store backed up", {{"source", source}, {"dest", dest}, {"pages", std::to_string(result.pages)}});
  return result;
}

}  // namespace clustergov::store
