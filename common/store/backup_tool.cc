// clustergov-backup: an online, consistent copy of a service's SQLite store, taken while the
// service runs (see common/store/backup.h). In Kubernetes:
//
//   kubectl exec statefulset/clusters -- clustergov-backup --db=/data/clusters.db \
//       --to=/data/backup-$(date +%Y%m%d).db
//
// Exit status 0 with a summary on stdout; 1 when the backup failed; 2 for bad flags.

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/store/backup.h"

ABSL_FLAG(std::string, db, "", "The service's database file (its --db).");
ABSL_FLAG(std::string, to, "", "Where the copy goes; must not exist.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("clustergov-backup --db=<service database> --to=<new file>");
  absl::ParseCommandLine(argc, argv);
  const std::string db = absl::GetFlag(FLAGS_db);
  const std::string to = absl::GetFlag(FLAGS_to);
  if (db.empty() || to.empty()) {
    std::fprintf(stderr, "clustergov-backup: --db and --to are required\n");
    return 2;
  }
  auto result = clustergov::store::BackupDatabase(db, to);
  if (!result.ok()) {
    std::fprintf(stderr, "clustergov-backup: %s\n", std::string(result.status().message()).c_str());
    return 1;
  }
  std::printf("backed up %s to %s: %lld pages, %lld bytes\n", db.c_str(), to.c_str(),
              static_cast<long long>(result->pages), static_cast<long long>(result->bytes));
  return 0;
}
